"""OAuth applications and Email Settings on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, text

from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.errors import Conflict, InvalidInput
from replygate.secretbox import SecretBox, new_key, parse_key
from replygate.services.applications import (
    CLOUDS,
    ApplicationInput,
    list_applications,
    register_application,
    remove_application,
    update_application,
)
from replygate.services.configuring import (
    current_settings,
    parse_settings,
    save_settings,
    stored_passwords,
)
from tests.conftest import FixedClock

UowFactory = Callable[[], SqlAlchemyUnitOfWork]
TENANT = "7f3b1c2d-0000-4000-8000-00000000c0de"
CLIENT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


@pytest.fixture
def sealer() -> SecretBox:
    return SecretBox(parse_key(new_key(), "test"), "test")


def app_input(clock: FixedClock, **changes: object) -> ApplicationInput:
    values: dict[str, object] = {
        "name": "Contoso release gate",
        "tenant": TENANT,
        "client_id": CLIENT,
        "client_secret": "Xyz~very-secret-value",
        "secret_expires_at": clock.now() + timedelta(days=180),
    }
    values.update(changes)
    return ApplicationInput(**values)  # type: ignore[arg-type]


def certificate_pem(not_after: datetime) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "replygate")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=400))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode() + key_pem


def test_register_stores_the_secret_encrypted_only(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox, engine: Engine, database_url: str
) -> None:
    app = register_application(make_uow(), clock, sealer, app_input(clock), by="admin")
    assert app.id is not None
    assert app.secret_encrypted is not None
    assert sealer.decrypt(app.secret_encrypted, "client secret") == "Xyz~very-secret-value"
    with engine.connect() as connection:
        dumped = str(connection.execute(text("select * from oauth_applications")).all())
    assert "very-secret-value" not in dumped
    if database_url.startswith("sqlite:///"):
        assert (
            b"very-secret-value" not in Path(database_url.removeprefix("sqlite:///")).read_bytes()
        )
    assert [a.name for a in list_applications(make_uow())] == ["Contoso release gate"]


def test_certificate_credential_gets_thumbprint_and_expiry(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox
) -> None:
    not_after = datetime(2027, 6, 1, tzinfo=UTC)
    data = app_input(
        clock,
        client_secret=None,
        secret_expires_at=None,
        certificate_pem=certificate_pem(not_after),
    )
    app = register_application(make_uow(), clock, sealer, data, by="admin")
    assert app.credential_kind == "certificate"
    assert app.certificate_expires_at == not_after
    assert app.certificate_thumbprint is not None
    assert len(app.certificate_thumbprint) == 40
    assert app.certificate_encrypted is not None
    assert "PRIVATE KEY" in sealer.decrypt(app.certificate_encrypted, "certificate private key")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tenant": "common"}, "tenant"),
        ({"tenant": "not a tenant"}, "tenant"),
        ({"client_id": "abc"}, "client_id"),
        ({"mode": "magic"}, "mode"),
        ({"cloud": "mars"}, "cloud"),
        ({"cloud": "custom"}, "authority_host"),
        ({"secret_expires_at": None}, "secret_expires_at"),
        ({"certificate_pem": "x"}, "either a client secret or a certificate"),
        ({"client_secret": None}, "either a client secret or a certificate"),
    ],
)
def test_invalid_applications_are_refused(
    make_uow: UowFactory,
    clock: FixedClock,
    sealer: SecretBox,
    changes: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(InvalidInput, match=message):
        register_application(make_uow(), clock, sealer, app_input(clock, **changes), by="admin")


def test_expired_secret_and_bad_certificates_are_refused(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox
) -> None:
    with pytest.raises(InvalidInput, match="already expired"):
        register_application(
            make_uow(), clock, sealer, app_input(clock, secret_expires_at=clock.now()), by="a"
        )
    no_cert = app_input(clock, client_secret=None, secret_expires_at=None, certificate_pem="junk")
    with pytest.raises(InvalidInput, match="no PEM certificate"):
        register_application(make_uow(), clock, sealer, no_cert, by="a")
    pem = certificate_pem(datetime(2027, 1, 1, tzinfo=UTC))
    cert_only = pem[: pem.index("-----BEGIN PRIVATE KEY")]
    no_key = app_input(clock, client_secret=None, secret_expires_at=None, certificate_pem=cert_only)
    with pytest.raises(InvalidInput, match="private key"):
        register_application(make_uow(), clock, sealer, no_key, by="a")
    old = certificate_pem(clock.now() - timedelta(days=1))
    expired = app_input(clock, client_secret=None, secret_expires_at=None, certificate_pem=old)
    with pytest.raises(InvalidInput, match="expired"):
        register_application(make_uow(), clock, sealer, expired, by="a")


def test_names_are_unique_and_identity_change_drops_tokens(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox
) -> None:
    app = register_application(make_uow(), clock, sealer, app_input(clock), by="admin")
    with pytest.raises(Conflict):
        register_application(
            make_uow(), clock, sealer, app_input(clock, name="CONTOSO release gate"), by="a"
        )
    assert app.id is not None
    from replygate.db.tables import TokenCacheRow

    with make_uow() as uow:
        uow.token_caches.put(
            TokenCacheRow(
                application_id=app.id,
                username="svc@contoso.test",
                object_id="o",
                tenant_id="t",
                cache_encrypted="x",
                authorised_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        uow.commit()
    update_application(make_uow(), clock, sealer, app.id, app_input(clock, name="Renamed"), by="a")
    with make_uow() as uow:
        assert uow.token_caches.for_application(app.id) is not None  # same tenant and client
    other_tenant = app_input(clock, name="Renamed", tenant="fabrikam.com")
    update_application(make_uow(), clock, sealer, app.id, other_tenant, by="a")
    with make_uow() as uow:
        assert uow.token_caches.for_application(app.id) is None
    remove_application(make_uow(), app.id, by="a")
    assert list_applications(make_uow()) == []


def test_cloud_names_match_the_graph_adapter() -> None:
    from replygate.graph.clouds import CloudName

    assert set(CLOUDS) == {c.value for c in CloudName}


OAUTH_SETTINGS: dict[str, object] = {
    "smtp_user": "svc-replygate@contoso.test",
    "smtp_oauth_application": "Contoso release gate",
    "smtp_from_address": "Approvals@Contoso.test",
    "email_reply_folder": " Inbox / Approvals ",
}


def test_settings_are_versioned_audited_and_remember_the_folder(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox
) -> None:
    assert current_settings(make_uow()) is None
    settings = parse_settings(OAUTH_SETTINGS)
    assert settings.email_reply_folder == "Inbox/Approvals"
    assert settings.reply_address == "approvals@contoso.test"
    version, warnings = save_settings(make_uow(), clock, sealer, settings, by="admin")
    assert version == 1
    assert warnings == []
    clock.advance(hours=1)
    inbox = parse_settings({**OAUTH_SETTINGS, "email_reply_folder": "Inbox"})
    version, warnings = save_settings(make_uow(), clock, sealer, inbox, by="bob")
    assert version == 2
    assert "Inbox" in warnings[0]
    current = current_settings(make_uow())
    assert current is not None
    assert current[0] == 2
    with make_uow() as uow:
        events = [(e.actor, e.details["changed"]) for e in uow.audit.recent()]
        assert events[0] == ("bob", ["email_reply_folder"])
        folders = {(f.path, f.configured_at) for f in uow.folders.list()}
    assert folders == {
        ("Inbox/Approvals", clock.now() - timedelta(hours=1)),
        ("Inbox", clock.now()),
    }


def test_passwords_are_sealed_and_kept_across_versions(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox
) -> None:
    basic = parse_settings(
        {
            "smtp_auth_type": "basic",
            "imap_auth_type": "basic",
            "smtp_host": "smtp.example.test",
            "smtp_username": "gate",
            "smtp_from_address": "gate@example.test",
            "imap_host": "imap.example.test",
        }
    )
    save_settings(
        make_uow(), clock, sealer, basic, by="a", passwords={"smtp": "pw1", "imap": "pw2"}
    )
    save_settings(make_uow(), clock, sealer, basic, by="a")
    assert stored_passwords(make_uow(), sealer) == {"smtp": "pw1", "imap": "pw2"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "smtp_user is needed with OAuth"),
        ({**OAUTH_SETTINGS, "smtp_from_address": "nope"}, "smtp_from_address"),
        ({**OAUTH_SETTINGS, "email_reply_folder": "Inbox//x"}, "email_reply_folder"),
        ({**OAUTH_SETTINGS, "polling_interval_seconds": 1}, "polling_interval_seconds"),
        ({**OAUTH_SETTINGS, "smtp_auth_type": "basic"}, "smtp_host and smtp_username"),
        ({**OAUTH_SETTINGS, "unknown": 1}, "unknown"),
    ],
)
def test_invalid_settings_name_the_field(values: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_settings(values)
