"""``replygate demo``: the product against the built-in Microsoft 365 emulator."""

from __future__ import annotations

from typing import Annotated

import typer


def demo(
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Run the scenario headless; exit 0 only if a reply closed a request."
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="Console port (another free one if taken).")] = 8443,
    emulator_port: Annotated[int, typer.Option(help="Emulator port (0: any free one).")] = 8700,
) -> None:
    """Run replygate against the built-in Microsoft 365 emulator until Ctrl-C."""
    import logging
    import signal
    import threading

    from replygate import demo as scenario

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if check:
        raise typer.Exit(0 if scenario.check(0, 0, typer.echo) else 1)
    with scenario.running_demo(port, scenario.free_port(emulator_port)) as running:
        emu = running.emulator
        typer.echo("")
        typer.echo("replygate demo is running. Ctrl-C stops it and removes its data.")
        typer.echo("")
        typer.echo(f"  Console:        {running.console_url}")
        typer.echo(f"  Sign in:        admin / {running.admin_password}")
        typer.echo("                  or 'Sign in with Microsoft' as alice, bob or carol")
        typer.echo(f"  Mailboxes:      {emu.base_url}/_emu/ui/")
        typer.echo(f"  CA to trust:    {emu.ca_file} (emulator), {running.tls_cert} (console)")
        typer.echo("")
        typer.echo("  Two requests were sent from approvals@contoso.test. Open alice's inbox in")
        typer.echo("  the mailbox view, open the request, reply 'Approved, ship it', and watch")
        typer.echo("  it close in the console within seconds. Or sign in with Microsoft as bob")
        typer.echo("  and approve a request on its page.")
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
        typer.echo("stopping; removing the demo's data")
