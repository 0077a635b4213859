"""``replygate reply ...``: what replygate understands of a reply.

Heavy modules are imported inside the commands so that ``replygate --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from replygate.mail.understanding import Understanding

app = typer.Typer(help="Inspect how replies are understood.", no_args_is_help=True)


@app.callback()
def _reply() -> None:
    """Inspect how replies are understood."""


@app.command()
def explain(
    file: Annotated[Path, typer.Argument(help="A message as raw RFC 5322 bytes (.eml).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a summary.")
    ] = False,
    instance: Annotated[
        str | None,
        typer.Option("--instance", help="This instance's name, to flag other instances' tokens."),
    ] = None,
) -> None:
    """Show what replygate understands of one message; needs no database or network."""
    try:
        raw = file.read_bytes()
    except OSError as error:
        typer.echo(f"cannot read {file}: {error.strerror or error}", err=True)
        raise typer.Exit(2) from None
    from replygate.mail.understanding import understand

    result = understand(raw, instance=instance)
    if as_json:
        typer.echo(json.dumps(_as_json(result)))
    else:
        _print_summary(file, result)


def _as_json(result: Understanding) -> dict[str, Any]:
    return {
        "decision": result.decision.value if result.decision is not None else None,
        "comment": result.comment,
        "automatic": result.automatic,
        "token": result.token,
        "reasons": list(result.reasons),
    }


def _print_summary(file: Path, result: Understanding) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    message = result.message
    kind = result.automatic_detail.kind if result.automatic_detail else None
    rows = [
        ("From", ", ".join(box.address for box in message.from_) or "(none)"),
        ("Subject", message.subject or "(none)"),
        ("Token", result.token or "(none)"),
        ("Automatic", f"yes ({kind})" if result.automatic else "no"),
        ("Decision", result.decision.value if result.decision else "none"),
        ("Comment", result.comment or "(empty)"),
    ]
    if result.bounce is not None:
        failed = ", ".join(f"{r.address} ({r.status or '?'})" for r in result.bounce.recipients)
        rows.append(("Delivery failed", failed or "(unknown)"))
    rows.append(("Reasons", "\n".join(result.reasons)))
    table = Table(title=Text(str(file)), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in rows:
        # Text, not markup: mail content like "[Reject]" must print as it is.
        table.add_row(label, Text(value))
    Console(highlight=False).print(table)
