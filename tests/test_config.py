from pathlib import Path

import pytest

from recommender.config import load_settings, to_toml
from recommender.errors import ConfigError


def test_defaults_work_without_file_or_environment():
    settings = load_settings(environ={})
    assert settings.db == Path("recommender.db")
    assert set(settings.event_weights) == {"view", "add_to_cart", "purchase"}
    assert settings.als.factors > 0 and settings.evaluation.k == 10
    assert settings.consent_purposes == ("personalization", "marketing")


def test_file_then_environment_then_overrides(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(
        'db = "from-file.db"\n[als]\nfactors = 16\niterations = 3\n[event_weights]\nview = 0.5\npurchase = 9\n'
    )
    env = {"RECOMMENDER_ALS_FACTORS": "32", "RECOMMENDER_ALS_LOG_SCALING": "false"}
    settings = load_settings(path, environ=env)
    assert settings.db == Path("from-file.db")
    assert settings.als.factors == 32 and settings.als.iterations == 3
    assert settings.als.log_scaling is False
    assert settings.event_weights == {"view": 0.5, "purchase": 9.0}
    settings = load_settings(path, environ=env, overrides={"db": "cli.db"})
    assert settings.db == Path("cli.db")


def test_environment_mapping_and_config_variable(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text("[evaluation]\nk = 5\n")
    settings = load_settings(environ={"RECOMMENDER_CONFIG": str(path), "RECOMMENDER_EVENT_WEIGHTS": "view=1,like=2"})
    assert settings.evaluation.k == 5
    assert settings.event_weights == {"view": 1.0, "like": 2.0}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[als]\nfactors = 'many'\n", "als.factors"),
        ("colour = 'blue'\n", "unknown setting 'colour'"),
        ("[als]\nfactors = 0\n", "factors"),
        ("[event_weights]\nview = -1\n", "positive"),
        ("[als\n", "invalid TOML"),
    ],
)
def test_bad_settings_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, environ={})


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_toml_round_trip(tmp_path):
    settings = load_settings(environ={}, overrides={"als": {"factors": 24, "log_scaling": False}})
    path = tmp_path / "tuned.toml"
    path.write_text(to_toml(settings))
    again = load_settings(path, environ={})
    assert again.als == settings.als and again.event_weights == settings.event_weights
