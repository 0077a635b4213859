"""Account use cases on both databases: validation, hashing, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from replygate.bootstrap import Container
from replygate.db.tables import AuditEventRow, UserRow
from replygate.errors import Conflict, InvalidInput, NotFound
from replygate.services import accounts
from replygate.services.account_ports import Role
from tests.integration.web.conftest import PASSWORD, add_user


def test_create_normalises_and_hashes(container: Container) -> None:
    user = accounts.create_user(
        container.uow(),
        username="  Alice.Ops ",
        password=PASSWORD,
        role=Role.REQUESTER,
        email="Alice@Contoso.test",
        actor="cli",
    )
    assert user.username == "alice.ops"
    assert user.email == "Alice@contoso.test"
    assert PASSWORD not in repr(user)
    with container.uow() as uow:
        stored = uow.session.scalars(select(UserRow.password_hash)).one()
        audit = uow.session.execute(
            select(AuditEventRow.actor, AuditEventRow.action, AuditEventRow.target)
        ).one()
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert tuple(audit) == ("cli", "user.create", "alice.ops")


@pytest.mark.parametrize(
    ("username", "password", "email", "message"),
    [
        ("bad name", PASSWORD, None, "is not valid"),
        ("-dash", PASSWORD, None, "is not valid"),
        ("ok", "short", None, "too short"),
        ("ok", "x" * 2000, None, "too long"),
        ("ok", PASSWORD, "not-an-address", "email address"),
    ],
)
def test_create_refuses_bad_input(
    container: Container, username: str, password: str, email: str | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        accounts.create_user(
            container.uow(),
            username=username,
            password=password,
            role=Role.VIEWER,
            email=email,
            actor="t",
        )


def test_duplicate_username_is_a_conflict(container: Container) -> None:
    add_user(container, "alice")
    with pytest.raises(Conflict, match="exists already"):
        add_user(container, "ALICE")


def test_authenticate(container: Container) -> None:
    add_user(container, "alice")
    assert accounts.authenticate(container.uow(), username="Alice", password=PASSWORD).id
    for username, password in (("alice", "wrong-password"), ("nobody", PASSWORD), ("", "")):
        with pytest.raises(accounts.InvalidCredentials, match="username or password"):
            accounts.authenticate(container.uow(), username=username, password=password)


def test_set_password_and_unknown_user(container: Container) -> None:
    add_user(container, "alice")
    accounts.set_password(container.uow(), username="alice", password="new password!", actor="a")
    user = accounts.authenticate(container.uow(), username="alice", password="new password!")
    assert user.username == "alice"
    with pytest.raises(NotFound, match="no user named 'bob'"):
        accounts.set_password(container.uow(), username="bob", password="new password!", actor="a")


def test_change_password_needs_the_current_one(container: Container) -> None:
    user = add_user(container, "alice")
    with pytest.raises(accounts.InvalidCredentials, match="current password"):
        accounts.change_password(
            container.uow(), user_id=user.id, current_password="nope", new_password="x" * 12
        )
