"""What every command shares: settings from the root options, and errors shown plainly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from replygate.bootstrap import Container
    from replygate.config import Settings

EXIT_USAGE = 4  # pipelines reserve 0-3 for approved/rejected/expired/cancelled


@contextmanager
def user_errors() -> Iterator[None]:
    """Show replygate's own errors as one clear line (with the fix), never a traceback."""
    from replygate.errors import ReplygateError

    try:
        yield
    except ReplygateError as error:
        typer.secho(f"error: {error.message}", fg="red", err=True)
        if error.fix:
            typer.echo(f"fix: {error.fix}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    from replygate.config import load_settings

    config: Path | None = (ctx.obj or {}).get("config")
    return load_settings(config, **overrides)


def container_from(ctx: typer.Context) -> Container:
    from replygate.bootstrap import build

    return build(settings_from(ctx))
