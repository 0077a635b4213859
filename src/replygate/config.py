"""Deployment settings: environment variables ``REPLYGATE_*`` over an optional TOML file.

Settings are read once at start (``load_settings``) and passed down; nothing reads the
environment later. Mail settings that admins edit in the console (Email Settings) live
in the database, not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from replygate.domain.tokens import validate_instance
from replygate.errors import ConfigurationError

ENV_PREFIX = "REPLYGATE_"


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("replygate", appauthor=False))


class Settings(BaseSettings):
    """Every deployment setting; each field's description is its documentation."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory for the SQLite database, the generated secret key and TLS files.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db. "
        "Default: a SQLite file replygate.db in DATA_DIR.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts secrets at rest (32 bytes, base64url). "
        "Default: generated on first start into DATA_DIR/secret.key (mode 0600).",
    )
    public_url: str = Field(
        default="https://localhost:8443",
        description="The https URL users and Microsoft reach replygate at; "
        "OAuth redirect URIs and links in mail are built from it.",
    )
    sign_in_application: str | None = Field(
        default=None,
        description="Name of the registered OAuth application whose Entra ID app signs people "
        "in to the console (Sign in with Microsoft; register {PUBLIC_URL}/login/microsoft/callback "
        "as its redirect URI). Unset: local sign-in only.",
    )
    instance: str = Field(
        default="default",
        description="Name of this deployment (e.g. prod, dev); part of every reply token.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTPS server listens on.")
    port: int = Field(default=8443, ge=1, le=65535, description="Port of the HTTPS server.")
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain; a self-signed one is generated when unset.",
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of the cert.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses whose X-Forwarded-Proto/For headers are trusted.",
    )
    ca_bundle: Path | None = Field(
        default=None,
        description="Extra CA certificates (PEM) to trust for Microsoft's endpoints, e.g. a "
        "TLS-inspecting proxy's, or the emulator's in the demo and tests.",
    )
    run_migrations: bool = Field(
        default=True, description="Upgrade the database schema when `serve` starts."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Logging level."
    )
    max_message_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=1024,
        description="The raw MIME of a processed reply is kept for audit up to this size; "
        "larger ones keep their ledger row only. (Replies over 25 MB are recorded as too "
        "large and left untouched.)",
    )
    raw_retention_days: int = Field(
        default=90,
        ge=0,
        description="Days to keep the raw MIME of processed replies (0: purge at once); "
        "the ledger rows themselves are kept.",
    )
    webhook_allow_networks: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) webhooks may reach although they are loopback, link-local "
        'or private, e.g. ["10.20.0.0/16"]. Empty: only public addresses.',
    )

    @field_validator("instance")
    @classmethod
    def _instance_is_token_safe(cls, value: str) -> str:
        return validate_instance(value)

    @field_validator("public_url")
    @classmethod
    def _public_url_is_absolute(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an absolute http(s) URL such as https://replygate.example.com"
            )
        return value.rstrip("/")

    @field_validator("sign_in_application")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None

    @field_validator("database_url")
    @classmethod
    def _database_is_supported(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'replygate.db'}"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings: ``overrides`` > environment > ``config_file`` > defaults.

    Raises ``ConfigurationError`` naming each bad setting and what it expects.
    """
    if config_file is not None and not config_file.is_file():
        raise ConfigurationError(
            f"the settings file {config_file} does not exist",
            fix="pass an existing TOML file with --config or REPLYGATE_CONFIG",
        )

    class _FromSources(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if config_file is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
            return tuple(sources)

    _FromSources.__name__ = _FromSources.__qualname__ = "Settings"
    try:
        return _FromSources(**overrides)
    except ValidationError as error:
        raise ConfigurationError(describe_validation_error(error)) from None
    except ValueError as error:  # a TOML file that does not parse
        raise ConfigurationError(
            f"the settings file {config_file} is not valid TOML: {error}"
        ) from None


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        problems.append(f"{ENV_PREFIX}{field.upper()} ({field}): {item['msg']}")
    return "invalid settings: " + "; ".join(problems)
