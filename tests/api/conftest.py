"""Fixtures for the API and extract tests: one fixture warehouse per session, a fresh app and
user store per test."""

from __future__ import annotations

import pytest
from fixture_app import login, make_app, users_template
from fixture_warehouse import build


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory):
    directory = tmp_path_factory.mktemp("warehouse")
    build(directory)
    return directory


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    return users_template(tmp_path_factory.mktemp("users"))


@pytest.fixture
def app(tmp_path, warehouse, monkeypatch, template):
    return make_app(tmp_path, warehouse, monkeypatch, template)


@pytest.fixture
def as_user(app):
    """as_user("prov-rwe") -> a logged-in test client."""

    def _client(username: str):
        client = app.test_client()
        assert login(client, username).status_code == 302
        return client

    return _client
