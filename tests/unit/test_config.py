from __future__ import annotations

from pathlib import Path

import pytest

from replygate.config import load_settings
from replygate.errors import ConfigurationError


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("REPLYGATE_"):
            monkeypatch.delenv(name)


def test_defaults_put_the_database_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'replygate.db'}"
    assert settings.instance == "default"
    assert settings.secret_key_file == tmp_path / "secret.key"


def test_environment_overrides_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "replygate.toml"
    config.write_text('instance = "dev"\npublic_url = "https://rg.example.com/"\n')
    assert load_settings(config).instance == "dev"
    assert load_settings(config).public_url == "https://rg.example.com"
    monkeypatch.setenv("REPLYGATE_INSTANCE", "prod")
    assert load_settings(config).instance == "prod"


def test_secret_key_never_appears_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLYGATE_SECRET_KEY", "super-secret-value")
    settings = load_settings()
    assert "super-secret-value" not in repr(settings)
    assert "super-secret-value" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REPLYGATE_INSTANCE", "Prod Env", "REPLYGATE_INSTANCE (instance)"),
        ("REPLYGATE_PORT", "http", "REPLYGATE_PORT (port)"),
        ("REPLYGATE_PUBLIC_URL", "replygate.example.com", "REPLYGATE_PUBLIC_URL (public_url)"),
        ("REPLYGATE_DATABASE_URL", "mysql://x", "REPLYGATE_DATABASE_URL (database_url)"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_settings()


def test_unknown_key_in_toml_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "replygate.toml"
    config.write_text('instanse = "dev"\n')
    with pytest.raises(ConfigurationError, match="instanse"):
        load_settings(config)


def test_missing_or_broken_toml_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("instance = \n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(broken)
