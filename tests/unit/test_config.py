"""Settings: defaults < afm.toml < AFM_* environment, validated, with secrets kept out of the repo."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.core.config import ConfigError, load_settings


def test_defaults_and_generated_secrets(tmp_path: Path) -> None:
    settings = load_settings(environ={"AFM_VAR_DIR": str(tmp_path)}, config_file=tmp_path / "absent.toml")
    assert settings.port == 8000 and settings.host == "127.0.0.1" and settings.workers == 1
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'afm.db'}"
    secrets_file = tmp_path / "secrets.toml"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert len(settings.secret_key) > 40 and settings.secret_key != settings.tag_key
    again = load_settings(environ={"AFM_VAR_DIR": str(tmp_path)}, config_file=tmp_path / "absent.toml")
    assert again.secret_key == settings.secret_key  # stable across restarts


def test_layers_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "afm.toml"
    config.write_text('port = 9000\nhost = "0.0.0.0"\nlog_format = "json"\n')
    env = {"AFM_VAR_DIR": str(tmp_path), "AFM_PORT": "9100", "AFM_SECRET_KEY": "s", "AFM_TAG_KEY": "t"}
    settings = load_settings(environ=env, config_file=config)
    assert settings.port == 9100  # environment wins, and "9100" becomes an int
    assert settings.host == "0.0.0.0" and settings.log_format == "json"
    assert settings.secret_key == "s" and not (tmp_path / "secrets.toml").exists()


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"AFM_PORT: .*<= 65535"):
        load_settings(environ={"AFM_VAR_DIR": str(tmp_path), "AFM_PORT": "70000"}, config_file=tmp_path / "x")
    with pytest.raises(ConfigError, match="AFM_WORKERS"):
        load_settings(environ={"AFM_VAR_DIR": str(tmp_path), "AFM_WORKERS": "many"}, config_file=tmp_path / "x")


def test_bad_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "afm.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match=r"afm\.toml: unknown setting\(s\) prot"):
        load_settings(environ={"AFM_VAR_DIR": str(tmp_path)}, config_file=config)
    config.write_text("port = [\n")
    with pytest.raises(ConfigError, match=r"afm\.toml"):
        load_settings(environ={"AFM_VAR_DIR": str(tmp_path)}, config_file=config)
    config.write_text('log_level = "loud"\n')
    with pytest.raises(ConfigError, match=r"afm\.toml: .*log_level"):
        load_settings(environ={"AFM_VAR_DIR": str(tmp_path)}, config_file=config)


def test_world_readable_secrets_are_refused(tmp_path: Path) -> None:
    load_settings(environ={"AFM_VAR_DIR": str(tmp_path)}, config_file=tmp_path / "x")
    (tmp_path / "secrets.toml").chmod(0o644)
    with pytest.raises(ConfigError, match="too open"):
        load_settings(environ={"AFM_VAR_DIR": str(tmp_path)}, config_file=tmp_path / "x")


def test_tag_key_rotation_and_retirement(tmp_path: Path) -> None:
    from app.core.config import ConfigError, load_settings, retire_tag_key, rotate_tag_key

    env = {"AFM_VAR_DIR": str(tmp_path), "AFM_SECRET_KEY": "s"}
    first = load_settings(environ=env, config_file=tmp_path / "none.toml")
    assert first.tag_key_id == "K1" and first.tag_old_keys == {}
    assert rotate_tag_key(tmp_path) == ("K1", "K2")
    second = load_settings(environ=env, config_file=tmp_path / "none.toml")
    assert second.tag_key_id == "K2" and second.tag_old_keys == {"K1": first.tag_key}
    assert second.tag_key != first.tag_key
    assert (tmp_path / "secrets.toml").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError, match="active"):
        retire_tag_key(tmp_path, "K2")
    retire_tag_key(tmp_path, "K1")
    third = load_settings(environ=env, config_file=tmp_path / "none.toml")
    assert third.tag_keys_retired == ["K1"] and third.tag_key_id == "K2"
    assert rotate_tag_key(tmp_path) == ("K2", "K3")
    fourth = load_settings(environ=env, config_file=tmp_path / "none.toml")
    assert set(fourth.tag_old_keys) == {"K1", "K2"} and fourth.tag_keys_retired == ["K1"]
