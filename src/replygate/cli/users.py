"""``replygate users ...``: local accounts of the web console."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from replygate.cli.common import container_from, user_errors

if TYPE_CHECKING:
    from replygate.bootstrap import Container

app = typer.Typer(help="Local accounts of the web console.", no_args_is_help=True)
ACTOR = "cli"


class RoleChoice(StrEnum):  # mirrors services.account_ports.Role, kept here for a fast --help
    viewer = "viewer"
    requester = "requester"
    admin = "admin"


PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from standard input (for scripts)."),
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.read().rstrip("\r\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@contextmanager
def _opened(ctx: typer.Context) -> Iterator[Container]:
    """The container, on a database at the right schema; its connections closed after."""
    container = container_from(ctx)
    try:
        container.check_schema()
        yield container
    finally:
        container.engine.dispose()


@app.command()
def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Sign-in name (letters, digits, . _ @ + -).")],
    admin: Annotated[bool, typer.Option("--admin", help="Same as --role admin.")] = False,
    role: Annotated[
        RoleChoice | None,
        typer.Option(help="viewer (read), requester (own requests, API tokens) or admin."),
    ] = None,
    email: Annotated[str | None, typer.Option(help="The user's email address.")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user; without --admin or --role the user is a viewer."""
    from replygate.errors import InvalidInput
    from replygate.services import accounts
    from replygate.services.account_ports import Role

    with user_errors():
        if admin and role not in (None, RoleChoice.admin):
            raise InvalidInput("--admin and --role disagree", fix="give one of them")
        chosen = Role.ADMIN if admin else Role(role.value if role else Role.VIEWER)
        with _opened(ctx) as container:
            user = accounts.create_user(
                container.uow(),
                username=username,
                password=_password(password_stdin),
                role=chosen,
                email=email,
                actor=ACTOR,
            )
        typer.echo(f"created {user.role.value} {user.username}")


@app.command("list")
def list_users(ctx: typer.Context) -> None:
    """List users: name, role, email and whether they are disabled."""
    from replygate.services import accounts

    with user_errors():
        with _opened(ctx) as container:
            users = accounts.list_users(container.uow())
        if not users:
            typer.echo("no users yet: create one with `replygate users create NAME --admin`")
            return
        width = max(len(user.username) for user in users)
        for user in users:
            state = "disabled" if user.disabled else "active"
            email = user.email or "-"
            typer.echo(f"{user.username:<{width}}  {user.role.value:<9}  {state:<8}  {email}")


@app.command("set-password")
def set_password(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user whose password to set.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password (their open sessions end)."""
    from replygate.services import accounts

    with user_errors():
        with _opened(ctx) as container:
            password = _password(password_stdin)
            accounts.set_password(
                container.uow(), username=username, password=password, actor=ACTOR
            )
        typer.echo(f"password of {username} set")


@app.command()
def disable(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user to disable.")],
) -> None:
    """Disable a user: they cannot sign in, and their sessions and API tokens stop working."""
    from replygate.services import accounts

    with user_errors():
        with _opened(ctx) as container:
            user = accounts.set_disabled(
                container.uow(), username=username, disabled=True, actor=ACTOR
            )
        typer.echo(f"disabled {user.username}")


@app.command()
def enable(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user to enable again.")],
) -> None:
    """Enable a disabled user again."""
    from replygate.services import accounts

    with user_errors():
        with _opened(ctx) as container:
            user = accounts.set_disabled(
                container.uow(), username=username, disabled=False, actor=ACTOR
            )
        typer.echo(f"enabled {user.username}")
