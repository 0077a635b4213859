"""``replygate db ...``: the database schema."""

from __future__ import annotations

import typer

from replygate.cli.common import container_from, user_errors

app = typer.Typer(help="Database schema: upgrade and inspect.", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Upgrade the database schema to this version's head (safe to run repeatedly)."""
    from replygate.db import migrate

    with user_errors():
        container = container_from(ctx)
        migrate.upgrade(container.engine)
        container.verify_secret_key()
        typer.echo(f"database at revision {migrate.current_revision(container.engine)}")


@app.command()
def current(ctx: typer.Context) -> None:
    """Print the schema revision of the database and the one this version needs."""
    from replygate.db import migrate

    with user_errors():
        container = container_from(ctx)
        typer.echo(f"database: {migrate.current_revision(container.engine) or 'empty'}")
        typer.echo(f"needed:   {migrate.head_revision(container.engine)}")
