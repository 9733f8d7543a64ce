"""Dashboard test fixtures: one fixture warehouse per session and a Dash app reading it.

fixture_warehouse.py is loaded under a unique module name because tests/api has a module of the
same name and pytest puts both folders on sys.path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def load_fixture_module():
    name = "cmh_dashboard_fixture_warehouse"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fixture_warehouse.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fw = load_fixture_module()


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("dash-warehouse")
    fw.publish_fixture(directory)
    return directory


@pytest.fixture(scope="session")
def frames():
    """The fixture's tables as DataFrames: the independent truth the query tests compare with."""
    return fw.build_frames()


@pytest.fixture(autouse=True, scope="module")
def _auth_off():
    """These tests are about the dashboard, not the login (tests/auth); the viewer is then an admin."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CMH_AUTH", "off")
        yield


@pytest.fixture(scope="session")
def app(warehouse, tmp_path_factory):
    from dashboard.app import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CMH_AUTH", "off")
        return create_app(warehouse, cache_dir=tmp_path_factory.mktemp("dash-cache"))


@pytest.fixture
def client(app):
    return app.server.test_client()


@pytest.fixture
def request_ctx(app):
    """A request context, as callbacks and layouts run in one (the query snapshot lives in it)."""
    with app.server.test_request_context("/"):
        yield


@pytest.fixture(scope="session")
def fixtures_mod():
    """tests/dashboard/fixture_warehouse.py (publish_fixture, build_frames)."""
    return fw
