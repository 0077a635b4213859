"""``replygate outbox ...``: the mail waiting to be sent, for operators."""

from __future__ import annotations

from typing import Annotated

import typer

from replygate.cli.common import container_from, user_errors

app = typer.Typer(help="Mail waiting to be sent: list, retry, cancel.", no_args_is_help=True)


@app.command("list")
def list_rows(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option(help="pending, claimed, sent, failed, skipped or cancelled.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows, newest first.")] = 50,
) -> None:
    """List outbox rows with their state, attempts and last error."""
    with user_errors():
        container = container_from(ctx)
        with container.uow() as uow:
            rows = uow.outbox.list(state=state, limit=limit)
            for row in rows:
                error = f"\t{row.last_error}" if row.last_error else ""
                typer.echo(
                    f"{row.id}\t{row.kind}\t{row.request_id or '-'}\t{row.state}\t"
                    f"attempts {row.attempts}\tnext {row.next_attempt_at:%Y-%m-%d %H:%M:%S}{error}"
                )
    if not rows:
        typer.echo("no outbox rows" + (f" in state {state}" if state else ""), err=True)


@app.command("retry")
def retry(ctx: typer.Context, row_id: Annotated[int, typer.Argument(help="The row's id.")]) -> None:
    """Queue a failed row again (after fixing what made it fail)."""
    with user_errors():
        container = container_from(ctx)
        with container.uow() as uow:
            done = uow.outbox.retry(row_id)
            uow.audit.record("cli", "outbox.retry", str(row_id))
            uow.commit()
    if not done:
        typer.echo(f"row {row_id} is not a failed row", err=True)
        raise typer.Exit(4)
    typer.echo(f"row {row_id} queued again")


@app.command("cancel")
def cancel(
    ctx: typer.Context, row_id: Annotated[int, typer.Argument(help="The row's id.")]
) -> None:
    """Never send a pending or failed row."""
    with user_errors():
        container = container_from(ctx)
        with container.uow() as uow:
            done = uow.outbox.cancel(row_id)
            uow.audit.record("cli", "outbox.cancel", str(row_id))
            uow.commit()
    if not done:
        typer.echo(f"row {row_id} is neither pending nor failed", err=True)
        raise typer.Exit(4)
    typer.echo(f"row {row_id} cancelled")
