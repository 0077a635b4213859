"""``replygate worker``: the background loops without the web app."""

from __future__ import annotations

import typer

from replygate.cli.common import container_from, user_errors


def worker(ctx: typer.Context) -> None:
    """Run the loops (send the outbox, read the reply folder, expire requests) until stopped."""
    import logging
    import signal
    import threading

    from replygate.worker.loops import Worker

    with user_errors():
        container = container_from(ctx)
        logging.basicConfig(
            level=container.settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        container.check_schema()
        container.verify_secret_key()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    loops = Worker(container)
    typer.echo(f"replygate worker {loops.worker_id} running; Ctrl-C stops it")
    try:
        loops.run_forever(stop)
    finally:
        loops.close()
