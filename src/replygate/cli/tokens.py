"""``replygate tokens ...``: API tokens for pipelines (the secret is printed once)."""

from __future__ import annotations

from typing import Annotated

import typer

from replygate.cli.common import user_errors
from replygate.cli.users import _opened

app = typer.Typer(help="API tokens for pipelines and scripts.", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. 'ci-prod'.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="approvals:read, approvals:write, settings:read, settings:write (repeat); "
            "default: approvals:read and approvals:write.",
        ),
    ] = None,
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="e.g. 90d; 'never' for no expiry.")
    ] = "90d",
) -> None:
    """Create a token and print it once: store it in the pipeline's secrets."""
    from replygate.cli.durations import parse_duration
    from replygate.errors import InvalidInput, NotFound
    from replygate.services import accounts

    with user_errors():
        scopes = accounts.parse_scopes(scope or ["approvals:read", "approvals:write"])
        try:
            lifetime = None if expires_in == "never" else parse_duration(expires_in)
        except ValueError as error:
            raise InvalidInput(f"--expires-in: {error}") from None
        with _opened(ctx) as container:
            with container.uow() as uow:
                owner = uow.users.by_username(accounts.normalise_username(user))
            if owner is None:
                raise NotFound(f"there is no user named {user!r}", fix="see `replygate users list`")
            issued = accounts.create_api_token(
                container.uow(),
                container.clock,
                user_id=owner.id,
                name=name,
                scopes=scopes,
                expires_in=lifetime,
            )
        typer.echo(issued.secret)
        scopes_text = ", ".join(sorted(s.value for s in issued.token.scopes))
        until = issued.token.expires_at.isoformat() if issued.token.expires_at else "never"
        typer.echo(
            f"token {issued.token.id} for {owner.username} ({scopes_text}), expires {until}; "
            "it is shown only now",
            err=True,
        )


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
) -> None:
    """List tokens: id, user, name, scopes, expiry, state (never the secrets)."""
    from replygate.services import accounts

    with user_errors():
        with _opened(ctx) as container:
            users = accounts.list_users(container.uow())
            if user is not None:
                wanted = accounts.normalise_username(user)
                users = [u for u in users if u.username == wanted]
            rows = []
            now = container.clock.now()
            for owner in users:
                for token in accounts.list_api_tokens(container.uow(), user_id=owner.id):
                    state = (
                        "active"
                        if token.usable_at(now)
                        else ("revoked" if token.revoked_at else "expired")
                    )
                    until = token.expires_at.date().isoformat() if token.expires_at else "never"
                    scopes = ",".join(sorted(s.value for s in token.scopes))
                    rows.append(
                        f"{token.id:>4}  {owner.username}  {token.name}  {scopes}  {until}  {state}"
                    )
        typer.echo("\n".join(rows) if rows else "no API tokens")


@app.command()
def revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(help="The token's id (see `tokens list`).")],
) -> None:
    """Revoke a token: it stops working at once."""
    from replygate.errors import NotFound
    from replygate.services import accounts

    with user_errors():
        with _opened(ctx) as container:
            with container.uow() as uow:
                token = uow.api_tokens.get(token_id)
                owner = uow.users.get(token.user_id) if token else None
            if owner is None:
                raise NotFound(f"there is no API token {token_id}")
            accounts.revoke_api_token(container.uow(), container.clock, token_id=token_id, by=owner)
        typer.echo(f"revoked token {token_id}")
