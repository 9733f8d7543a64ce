"""Configuration: defaults with no file, the TOML file, environment overrides, and clear errors.
Every test passes `env` explicitly and runs in tmp_path, so the developer's own cmh.toml or CMH_*
variables cannot leak in."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import duckdb
import pytest

from pipelines.config import Config, ConfigError, env_name, load_config, settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_defaults_without_a_file(tmp_path):
    cfg = load_config(env={})
    assert cfg.source is None
    assert cfg.pipeline.inbox == Path("var/inbox") and cfg.pipeline.warehouse == Path("var/warehouse")
    assert cfg.schedule.cron == "0 2 * * *" and cfg.schedule.timezone == "UTC"
    # spec 03: threshold 5 and rounding base 5 are the defaults
    assert (cfg.disclosure.threshold, cfg.disclosure.rounding) == (5, 5)
    assert cfg.publish.keep_builds == 5
    assert (cfg.dashboard.host, cfg.dashboard.port) == ("127.0.0.1", 8050)  # spec 06's `cmh serve` defaults


def test_duckdb_settings_leave_defaults_to_duckdb():
    assert load_config(env={}).pipeline.duckdb_config() == {}
    cfg = load_config(env={"CMH_PIPELINE_THREADS": "1", "CMH_PIPELINE_MEMORY_LIMIT": "1GiB"})
    con = duckdb.connect(config=cfg.pipeline.duckdb_config())
    got = con.execute("select current_setting('threads'), current_setting('memory_limit')").fetchone()
    con.close()
    assert got == (1, "1.0 GiB")


def test_config_is_frozen():
    cfg = load_config(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.publish.keep_builds = 1


def test_cmh_toml_in_working_directory_overrides_defaults(tmp_path):
    (tmp_path / "cmh.toml").write_text(
        '[pipeline]\ninbox = "data/in"\nwarehouse = "/srv/wh"\n'
        '[disclosure]\nthreshold = 10\n[schedule]\ncron = "*/15 * * * 1-5"\ntimezone = "Europe/London"\n'
    )
    cfg = load_config(env={})
    assert cfg.source == (tmp_path / "cmh.toml").resolve()
    assert cfg.pipeline.inbox == tmp_path.resolve() / "data/in"  # relative to the file
    assert cfg.pipeline.warehouse == Path("/srv/wh")
    assert cfg.disclosure.threshold == 10 and cfg.disclosure.rounding == 5
    assert cfg.schedule.cron == "*/15 * * * 1-5" and cfg.schedule.timezone == "Europe/London"


def test_cmh_config_variable_names_the_file(tmp_path):
    other = tmp_path / "etc" / "cmh-prod.toml"
    other.parent.mkdir()
    other.write_text("[publish]\nkeep_builds = 9\n")
    (tmp_path / "cmh.toml").write_text("[publish]\nkeep_builds = 2\n")
    assert load_config(env={"CMH_CONFIG": str(other)}).publish.keep_builds == 9
    assert load_config(other, env={}).publish.keep_builds == 9
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(env={"CMH_CONFIG": str(tmp_path / "missing.toml")})


def test_environment_beats_the_file(tmp_path):
    (tmp_path / "cmh.toml").write_text("[disclosure]\nthreshold = 10\n[publish]\nkeep_builds = 3\n")
    env = {
        "CMH_DISCLOSURE_THRESHOLD": "7",
        "CMH_DISCLOSURE_ROUNDING": " 10 ",
        "CMH_PIPELINE_INBOX": "elsewhere/inbox",
        "CMH_PIPELINE_WAREHOUSE": "/data/wh",
        "CMH_SCHEDULE_CRON": "0 0 1 * *",
        "CMH_DASHBOARD_FRESHNESS_DAYS": "60",
        "CMH_PUBLISH_KEEP_BUILDS": "12",
        "CMH_SOMETHING_ELSE": "ignored",
    }
    cfg = load_config(env=env)
    assert (cfg.disclosure.threshold, cfg.disclosure.rounding) == (7, 10)
    assert cfg.pipeline.inbox == Path("elsewhere/inbox")  # relative to the working directory
    assert cfg.pipeline.warehouse == Path("/data/wh")
    assert cfg.schedule.cron == "0 0 1 * *"
    assert cfg.dashboard.freshness_days == 60 and cfg.publish.keep_builds == 12


def test_every_setting_has_an_environment_variable():
    names = {env_name(s, k) for s, k, _ in settings()}
    assert {"CMH_PIPELINE_INBOX", "CMH_SCHEDULE_CRON", "CMH_DASHBOARD_FRESHNESS_DAYS"} <= names
    for section, key, typ in settings():
        value = {int: "3", str: "x", Path: "p", bool: "false"}[typ]
        if (section, key) == ("pipeline", "memory_limit"):
            value = "4GB"
        elif (section, key) == ("schedule", "cron"):
            value = "@daily"
        elif (section, key) == ("schedule", "timezone"):
            value = "Europe/London"
        cfg = load_config(env={env_name(section, key): value})
        assert getattr(getattr(cfg, section), key) == (False if typ is bool else typ(value))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CMH_PUBLISH_KEEP_BUILDS": "five"}, "CMH_PUBLISH_KEEP_BUILDS='five' is not a whole number"),
        ({"CMH_DISCLOSURE_THRESHOLD": "2.5"}, "CMH_DISCLOSURE_THRESHOLD='2.5' is not a whole number"),
        ({"CMH_PUBLISH_KEEP_BUILDS": "0"}, "publish.keep_builds must be >= 1, got 0"),
        ({"CMH_DASHBOARD_PORT": "70000"}, "dashboard.port must be between 1 and 65535"),
        ({"CMH_SCHEDULE_CRON": "0 25 * * *"}, "schedule.cron: hour: 25 is outside 0-23"),
        ({"CMH_SCHEDULE_TIMEZONE": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"CMH_PIPELINE_WAREHOUSE": " "}, "CMH_PIPELINE_WAREHOUSE is empty"),
        ({"CMH_PIPELINE_MEMORY_LIMIT": "lots"}, "pipeline.memory_limit must be empty or a size"),
    ],
)
def test_bad_environment_values_are_named(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_config(env=env)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[publish]\nkeep_bulids = 3\n", "unknown setting publish.keep_bulids"),
        ("[pubilsh]\nkeep_builds = 3\n", r"unknown section \[pubilsh\]"),
        ('[publish]\nkeep_builds = "3"\n', "publish.keep_builds must be a whole number"),
        ("[publish]\nkeep_builds = true\n", "publish.keep_builds must be a whole number"),
        ("[pipeline]\ninbox = 3\n", "pipeline.inbox must be a string"),
        ("[publish\nkeep_builds = 3\n", "not valid TOML"),
    ],
)
def test_bad_file_contents_are_named(tmp_path, text, message):
    (tmp_path / "cmh.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(env={})


def test_example_file_documents_every_setting_with_its_default(tmp_path):
    example = ROOT / "cmh.example.toml"
    data = tomllib.loads(example.read_text())
    documented = {(s, k) for s, table in data.items() for k in table}
    assert documented == {(s, k) for s, k, _ in settings()}
    for section, key, _ in settings():
        assert env_name(section, key) in example.read_text(), f"{section}.{key}: env variable not documented"
    cfg = load_config(example, env={})
    defaults = Config()
    for section, key, typ in settings():
        got, want = getattr(getattr(cfg, section), key), getattr(getattr(defaults, section), key)
        if typ is Path:  # the example's relative paths resolve against its own folder
            assert got == example.parent.resolve() / want
        else:
            assert got == want, f"{section}.{key}"
