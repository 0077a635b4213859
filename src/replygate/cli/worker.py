"""``replygate worker``: the background loops without the web app."""

from __future__ import annotations

from typing import Annotated

import typer

from replygate.cli.common import container_from, user_errors


def worker(
    ctx: typer.Context,
    lease_seconds: Annotated[
        float,
        typer.Option(
            "--lease-seconds",
            min=1,
            help="How long this worker's hold on the reply folder lasts without renewal: "
            "when it dies, another worker takes the folder over after this long.",
        ),
    ] = 60,
) -> None:
    """Run the loops (send the outbox, read the reply folder, expire requests) until stopped.

    Any number of workers may run against PostgreSQL; on SQLite only one process runs the
    loops (a second one is refused).
    """
    import logging
    import signal
    import threading
    from datetime import timedelta

    from replygate.worker.guard import hold_worker_lock
    from replygate.worker.loops import Worker

    with user_errors():
        container = container_from(ctx)
        logging.basicConfig(
            level=container.settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        container.check_schema()
        container.verify_secret_key()
        lock = hold_worker_lock(container.settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    loops = Worker(container, lease_period=timedelta(seconds=lease_seconds))
    typer.echo(f"replygate worker {loops.worker_id} running; Ctrl-C stops it")
    try:
        loops.run_forever(stop)
    finally:
        loops.close()
        if lock is not None:
            lock.release()
