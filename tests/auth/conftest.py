"""Fixtures for the auth tests. The app factory and fixture warehouse live in tests/api (one
test helper for both folders), so that folder is put on the import path here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from fixture_app import make_app, users_template  # noqa: E402
from fixture_warehouse import build  # noqa: E402


@pytest.fixture(scope="session")
def auth_warehouse(tmp_path_factory):
    directory = tmp_path_factory.mktemp("auth_warehouse")
    build(directory)
    return directory


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    return users_template(tmp_path_factory.mktemp("users"))


@pytest.fixture
def app(tmp_path, auth_warehouse, monkeypatch, template):
    return make_app(tmp_path, auth_warehouse, monkeypatch, template)


@pytest.fixture
def store(app):
    return app.extensions["cmh_auth"].store


@pytest.fixture
def audit(app):
    return app.extensions["cmh_auth"].audit
