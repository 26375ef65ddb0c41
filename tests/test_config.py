"""Settings: config/default.toml holds every setting; env vars override by the naming rule;
secrets only come from the environment; bad values are one clear ConfigError."""

from __future__ import annotations

import tomllib

import pytest

from debate.core.config import DEFAULT_TOML, Settings, load_settings
from debate.core.errors import ConfigError


def _flatten(d: dict, prefix: str = "") -> dict:  # type: ignore[type-arg]
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("rubric", "prices", "role_models"):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_default_toml_and_model_defaults_agree(monkeypatch):
    for var in ("DEBATE_DATABASE_URL", "DEBATE_BACKEND", "DEBATE_PRESET", "DEBATE_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    toml = _flatten(tomllib.loads(DEFAULT_TOML.read_text()))
    defaults = _flatten(Settings.model_construct().model_dump())
    # Secrets, and settings whose default is "unset" (TOML has no null: they are comments there).
    secrets = {"openai.api_key", "reviewer_tokens", "openai.base_url", "openai.max_output_tokens", "local.base_url"}
    secrets |= {f"openai.{key}" for key in ("top_p", "frequency_penalty", "presence_penalty", "seed")}
    missing = set(defaults) - set(toml) - secrets
    assert not missing, f"settings without a default in config/default.toml: {sorted(missing)}"
    for key, value in toml.items():
        if key == "openai.prices":
            continue  # prices are data: the TOML lists some, the model has none built in
        assert value == defaults[key], f"{key}: default.toml says {value!r}, the model {defaults[key]!r}"


def test_environment_overrides_follow_the_naming_rule(monkeypatch):
    monkeypatch.setenv("DEBATE_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("DEBATE_OPENAI__BASE_URL", "http://127.0.0.1:9999/v1")
    monkeypatch.setenv("DEBATE_DEBATE__ROUNDS", "4")
    s = load_settings()
    assert s.database_url == "sqlite:///elsewhere.db"
    assert s.openai.base_url == "http://127.0.0.1:9999/v1"
    assert s.debate.rounds == 4
    assert s.debate.judges == 3  # untouched keys keep their TOML default


def test_flags_override_the_environment(monkeypatch):
    monkeypatch.setenv("DEBATE_DATABASE_URL", "sqlite:///env.db")
    assert load_settings(database_url="sqlite:///flag.db").database_url == "sqlite:///flag.db"


def test_bad_values_are_one_line_config_errors(monkeypatch):
    monkeypatch.setenv("DEBATE_DEBATE__JUDGES", "0")
    with pytest.raises(ConfigError, match="debate.judges"):
        load_settings()


def test_unknown_database_urls_are_refused():
    with pytest.raises(ConfigError, match="database_url"):
        load_settings(database_url="mysql://somewhere/db")


def test_a_secret_in_a_toml_file_is_refused(tmp_path, monkeypatch):
    f = tmp_path / "team.toml"
    f.write_text('[openai]\napi_key = "sk-oops"\n')
    monkeypatch.setenv("DEBATE_CONFIG_FILE", str(f))
    with pytest.raises(ConfigError, match="secret"):
        load_settings()


def test_api_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEBATE_OPENAI__API_KEY", "sk-test")
    s = load_settings()
    assert s.openai.api_key is not None and s.openai.api_key.get_secret_value() == "sk-test"
    assert "sk-test" not in repr(s)


def test_presets_hold_only_their_difference(monkeypatch):
    monkeypatch.setenv("DEBATE_PRESET", "judge-models")
    s = load_settings()
    assert s.openai.judge_models == ["gpt-4o-mini", "gpt-4o"]
    assert s.debate.rounds == 2  # from default.toml


def test_unknown_preset_is_named(monkeypatch):
    monkeypatch.setenv("DEBATE_PRESET", "nope")
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_settings()


def test_rubric_weights_must_sum_to_one(monkeypatch):
    monkeypatch.setenv("DEBATE_RUBRIC__SAFETY", "0.5")
    with pytest.raises(ConfigError, match="rubric"):
        load_settings()


def test_role_sampling_names_known_roles_and_parameters():
    s = load_settings(openai={"role_sampling": {"judge": {"temperature": 0.3, "seed": 7}}})
    assert s.openai.role_sampling == {"judge": {"temperature": 0.3, "seed": 7}}
    with pytest.raises(ConfigError, match="unknown role 'jduge'"):
        load_settings(openai={"role_sampling": {"jduge": {"temperature": 0.3}}})
    with pytest.raises(ConfigError, match="unknown sampling key 'temp'"):
        load_settings(openai={"role_sampling": {"judge": {"temp": 0.3}}})


def test_a_misspelt_environment_variable_is_refused_not_ignored(monkeypatch):
    monkeypatch.setenv("DEBATE_ROUNDS", "3")
    with pytest.raises(ConfigError, match=r"unknown setting DEBATE_ROUNDS.*DEBATE_DEBATE__ROUNDS"):
        load_settings()
    monkeypatch.delenv("DEBATE_ROUNDS")
    monkeypatch.setenv("DEBATE_DATABSE_URL", "sqlite:///x.db")
    with pytest.raises(ConfigError, match="unknown setting DEBATE_DATABSE_URL: no such setting$"):
        load_settings()


def test_the_variables_that_are_not_settings_are_left_alone(monkeypatch):
    for name in ("DEBATE_TEST_POSTGRES_URL", "DEBATE_REVIEWER_TOKENS", "DEBATE_CONFIG_FILE", "DEBATE_PRESET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEBATE_TEST_POSTGRES_URL", "postgresql+psycopg://x@127.0.0.1/test")
    monkeypatch.setenv("DEBATE_REVIEWER_TOKENS", '{"ann": "t"}')
    assert load_settings().debate.rounds == 2
