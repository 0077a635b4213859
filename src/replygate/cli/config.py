"""``replygate config ...``: check the mail configuration end to end."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from replygate.cli.common import container_from, user_errors

app = typer.Typer(help="Check the Email Settings and OAuth set-up.", no_args_is_help=True)

SYMBOLS = {"passed": "✔", "failed": "✘", "skipped": "–"}


@app.command("test")
def run_test(
    ctx: typer.Context,
    to: Annotated[
        str | None, typer.Option("--to", help="Send the test email to this address.")
    ] = None,
    loopback: Annotated[
        bool, typer.Option("--loopback/--no-loopback", help="Send and read back a test reply.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out_of_reach: Annotated[
        str | None,
        typer.Option(
            "--out-of-reach",
            help="App-only: a mailbox the application must NOT reach (proves its scoping).",
        ),
    ] = None,
) -> None:
    """Test Email Configuration: token, test email, reply folder, loop-back.

    Exits 0 when every step that ran passed, 1 when a step failed.
    """
    from dataclasses import asdict

    from replygate.configtest import run_config_test

    with user_errors():
        report = run_config_test(
            container_from(ctx), send_to=to, loopback=loopback, out_of_reach=out_of_reach
        )
    if as_json:
        typer.echo(
            json.dumps({"passed": report.passed, "steps": [asdict(s) for s in report.steps]})
        )
    else:
        for step in report.steps:
            typer.echo(f"{SYMBOLS[step.status.value]} {step.name}: {step.status.value}")
            if step.detail:
                typer.echo(f"    {step.detail}")
            if step.fix:
                typer.echo(f"    fix: {step.fix}")
    raise typer.Exit(0 if report.passed else 1)


@app.command("create-rule")
def create_rule(ctx: typer.Context) -> None:
    """Create an inbox rule moving replies to the Email Reply Folder (MailboxSettings.ReadWrite)."""
    from replygate.configtest import create_reply_rule

    with user_errors():
        typer.echo(create_reply_rule(container_from(ctx)))


@app.command("reference")
def reference() -> None:
    """Print the settings reference (Markdown) generated from the settings model."""
    from replygate.cli.config_reference import reference as print_reference

    print_reference()
