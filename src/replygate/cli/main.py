"""The root ``replygate`` command and its sub-commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from replygate import __version__
from replygate.cli import (
    apps,
    config,
    db,
    demo,
    outbox,
    reply,
    request,
    secrets,
    serve,
    settings,
    tokens,
    users,
    worker,
)

app = typer.Typer(
    name="replygate",
    help="Approvals by email for CI/CD pipelines, over Microsoft 365 (Graph + OAuth).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(config.app, name="config")
app.add_typer(apps.app, name="apps")
app.add_typer(settings.app, name="settings")
app.add_typer(outbox.app, name="outbox")
app.add_typer(secrets.app, name="secrets")
app.add_typer(reply.app, name="reply")
app.command("demo")(demo.demo)
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(request.app, name="request")
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"replygate {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="REPLYGATE_CONFIG",
            help="TOML settings file (environment variables REPLYGATE_* override it).",
            dir_okay=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = {"config": config}


def run() -> None:
    app()
