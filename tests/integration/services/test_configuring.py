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


def _authorise(make_uow: UowFactory, clock: FixedClock, app_id: int) -> None:
    from replygate.db.tables import TokenCacheRow

    with make_uow() as uow:
        uow.token_caches.put(
            TokenCacheRow(
                application_id=app_id,
                username="svc@contoso.test",
                object_id="o",
                tenant_id="t",
                cache_encrypted="x",
                authorised_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        uow.commit()


def _authorised(make_uow: UowFactory, app_id: int) -> bool:
    with make_uow() as uow:
        return uow.token_caches.for_application(app_id) is not None


def _last_update(make_uow: UowFactory) -> dict[str, object]:
    with make_uow() as uow:
        event = uow.audit.recent(1)[0]
        assert event.action == "oauth_app.update"
        return dict(event.details)


def no_credential(clock: FixedClock, **changes: object) -> ApplicationInput:
    return app_input(clock, **{"client_secret": None, "secret_expires_at": None, **changes})


def test_edit_without_a_credential_keeps_the_stored_secret(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox
) -> None:
    app = register_application(make_uow(), clock, sealer, app_input(clock), by="admin")
    assert app.id is not None
    edit = no_credential(clock, name="Renamed", tenant="fabrikam.com", mode="app-only")
    saved = update_application(make_uow(), clock, sealer, app.id, edit, by="a")
    with make_uow() as uow:
        stored = uow.applications.get(app.id)
    assert stored is not None
    assert (stored.name, stored.tenant, stored.mode) == ("Renamed", "fabrikam.com", "app-only")
    assert stored.credential_kind == saved.credential_kind == "secret"
    assert stored.secret_encrypted is not None
    assert sealer.decrypt(stored.secret_encrypted, "client secret") == "Xyz~very-secret-value"
    assert stored.secret_expires_at == app.secret_expires_at
    details = _last_update(make_uow)
    assert details["credential"] == "kept"
    assert details["changed"] == ["name", "tenant", "mode"]
    assert "very-secret-value" not in str(details)


def test_edit_without_a_credential_keeps_the_stored_certificate(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox
) -> None:
    pem = certificate_pem(datetime(2027, 6, 1, tzinfo=UTC))
    data = no_credential(clock, certificate_pem=pem)
    app = register_application(make_uow(), clock, sealer, data, by="admin")
    assert app.id is not None
    update_application(make_uow(), clock, sealer, app.id, no_credential(clock, name="B"), by="a")
    with make_uow() as uow:
        stored = uow.applications.get(app.id)
    assert stored is not None
    assert stored.name == "B"
    assert stored.credential_kind == "certificate"
    assert stored.certificate_thumbprint == app.certificate_thumbprint
    assert stored.certificate_expires_at == datetime(2027, 6, 1, tzinfo=UTC)
    assert stored.certificate_encrypted == app.certificate_encrypted
    later = no_credential(clock, secret_expires_at=clock.now() + timedelta(days=30))
    with pytest.raises(InvalidInput, match="secret_expires_at: a certificate's expiry is read"):
        update_application(make_uow(), clock, sealer, app.id, later, by="a")


def test_a_secret_expiry_can_be_corrected_alone(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox
) -> None:
    app = register_application(make_uow(), clock, sealer, app_input(clock), by="admin")
    assert app.id is not None
    real = datetime(2026, 3, 31, tzinfo=UTC)
    edit = no_credential(clock, secret_expires_at=real)
    saved = update_application(make_uow(), clock, sealer, app.id, edit, by="a")
    assert saved.secret_expires_at == saved.credential_expires_at == real
    assert saved.secret_encrypted == app.secret_encrypted
    assert _last_update(make_uow)["changed"] == ["secret_expires_at"]
    past = no_credential(clock, secret_expires_at=clock.now() - timedelta(days=1))
    with pytest.raises(InvalidInput, match="secret_expires_at: this secret has already expired"):
        update_application(make_uow(), clock, sealer, app.id, past, by="a")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"client_id": "11111111-2222-4333-8444-555555555555"}, "a new client id needs its own"),
        ({"cloud": "us-gov"}, "another cloud needs its own"),
        (
            {"cloud": "custom", "authority_host": "https://a.test", "graph_url": "https://g.test"},
            "another cloud needs its own",
        ),
    ],
)
def test_a_kept_credential_is_never_used_for_another_registration(
    make_uow: UowFactory,
    clock: FixedClock,
    sealer: SecretBox,
    changes: dict[str, object],
    message: str,
) -> None:
    app = register_application(make_uow(), clock, sealer, app_input(clock), by="admin")
    assert app.id is not None
    with pytest.raises(InvalidInput, match=f"^credential: {message}"):
        update_application(
            make_uow(), clock, sealer, app.id, no_credential(clock, **changes), by="a"
        )
    with make_uow() as uow:
        stored = uow.applications.get(app.id)
    assert stored is not None
    assert (stored.client_id, stored.cloud) == (CLIENT, "global")
    # With the new registration's credential, the same edit is saved.
    new_secret = app_input(clock, client_secret="the-new-one", **changes)
    saved = update_application(make_uow(), clock, sealer, app.id, new_secret, by="a")
    assert saved.secret_encrypted is not None
    assert sealer.decrypt(saved.secret_encrypted, "client secret") == "the-new-one"


def test_a_kept_secret_is_never_sent_to_a_new_authority_host(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox
) -> None:
    hosts = {"cloud": "custom", "authority_host": "https://a.test", "graph_url": "https://g.test"}
    app = register_application(make_uow(), clock, sealer, app_input(clock, **hosts), by="admin")
    assert app.id is not None
    moved = no_credential(clock, **{**hosts, "authority_host": "https://evil.test"})
    with pytest.raises(InvalidInput, match=r"^credential: a new authority host needs"):
        update_application(make_uow(), clock, sealer, app.id, moved, by="a")
    graph = no_credential(clock, **{**hosts, "graph_url": "https://graph2.test"})
    saved = update_application(make_uow(), clock, sealer, app.id, graph, by="a")
    assert saved.graph_url == "https://graph2.test"


def test_a_new_credential_replaces_the_old_one_and_both_are_refused(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox
) -> None:
    app = register_application(make_uow(), clock, sealer, app_input(clock), by="admin")
    assert app.id is not None
    pem = certificate_pem(datetime(2027, 6, 1, tzinfo=UTC))
    both = app_input(clock, certificate_pem=pem)
    with pytest.raises(InvalidInput, match="not both"):
        update_application(make_uow(), clock, sealer, app.id, both, by="a")
    with pytest.raises(InvalidInput, match="a certificate's expiry is read"):
        register_application(
            make_uow(),
            clock,
            sealer,
            app_input(clock, client_secret=None, certificate_pem=pem),
            by="a",
        )
    to_certificate = no_credential(clock, certificate_pem=pem)
    saved = update_application(make_uow(), clock, sealer, app.id, to_certificate, by="a")
    assert saved.credential_kind == "certificate"
    assert saved.secret_encrypted is None
    assert saved.secret_expires_at is None
    assert _last_update(make_uow)["credential"] == "new certificate"


@pytest.mark.parametrize(
    "changes",
    [
        {"tenant": "fabrikam.com"},
        {"mode": "app-only"},
        {"client_id": "11111111-2222-4333-8444-555555555555", "client_secret": "new"},
        {"cloud": "china", "client_secret": "new"},
    ],
    ids=["tenant", "mode", "client_id", "cloud"],
)
def test_an_edit_that_changes_what_tokens_were_issued_for_drops_the_authorisation(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox, changes: dict[str, object]
) -> None:
    app = register_application(make_uow(), clock, sealer, app_input(clock), by="admin")
    assert app.id is not None
    _authorise(make_uow, clock, app.id)
    edit = no_credential(clock, **changes)
    if changes.get("client_secret"):
        edit = app_input(clock, **changes)
    update_application(make_uow(), clock, sealer, app.id, edit, by="a")
    assert not _authorised(make_uow, app.id)
    assert _last_update(make_uow)["authorisation_dropped"] is True


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "Renamed"},
        {"secret_expires_at": datetime(2026, 9, 1, tzinfo=UTC)},
        {"client_secret": "rotated", "secret_expires_at": datetime(2027, 1, 1, tzinfo=UTC)},
    ],
    ids=["name", "expiry", "new-secret"],
)
def test_other_edits_keep_the_authorisation(
    make_uow: UowFactory, clock: FixedClock, sealer: SecretBox, changes: dict[str, object]
) -> None:
    app = register_application(make_uow(), clock, sealer, app_input(clock), by="admin")
    assert app.id is not None
    _authorise(make_uow, clock, app.id)
    update_application(make_uow(), clock, sealer, app.id, no_credential(clock, **changes), by="a")
    assert _authorised(make_uow, app.id)
    assert _last_update(make_uow)["authorisation_dropped"] is False


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
