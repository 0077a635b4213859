"""``replygate settings ...``: Email Settings from the command line (for scripted set-ups)."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Annotated

import typer

from replygate.cli.common import container_from, user_errors

app = typer.Typer(help="Email Settings: show and set.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the Email Settings in force (passwords are never shown) as JSON."""
    from replygate.services.configuring import current_settings

    with user_errors():
        current = current_settings(container_from(ctx).uow())
    if current is None:
        typer.echo("no Email Settings saved yet", err=True)
        raise typer.Exit(1)
    version, settings = current
    typer.echo(json.dumps({"version": version, **settings.model_dump()}, indent=2))


@app.command("set")
def set_settings(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="TOML file with the settings (see docs).", dir_okay=False)
    ],
    passwords_stdin: Annotated[
        bool,
        typer.Option("--passwords-stdin", help='Read {"smtp": ..., "imap": ...} JSON from stdin.'),
    ] = False,
) -> None:
    """Save a new version of the Email Settings from a TOML file; print warnings."""
    from replygate.services.configuring import parse_settings, save_settings

    try:
        values = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise typer.BadParameter(f"{file}: {error}") from None
    passwords = json.loads(sys.stdin.read()) if passwords_stdin else None
    with user_errors():
        container = container_from(ctx)
        settings = parse_settings(values)
        version, warnings = save_settings(
            container.uow(),
            container.clock,
            container.secrets,
            settings,
            by="cli",
            passwords=passwords,
        )
    typer.echo(f"Email Settings saved as version {version}")
    for warning in warnings:
        typer.echo(f"warning: {warning}")
