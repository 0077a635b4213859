"""``replygate serve``: the HTTPS web app (console, API, OAuth) in this process."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from replygate.cli.common import settings_from, user_errors


def serve(
    ctx: typer.Context,
    no_workers: Annotated[
        bool,
        typer.Option(
            "--no-workers",
            help="Serve the web app only, without the background loops (sending, reading, "
            "expiring); run them elsewhere with `replygate worker`.",
        ),
    ] = False,
    no_migrate: Annotated[
        bool,
        typer.Option(
            "--no-migrate",
            help="Do not upgrade the database schema at start (it must then be current).",
        ),
    ] = False,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default REPLYGATE_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default REPLYGATE_PORT).")
    ] = None,
) -> None:
    """Serve the console and API over HTTPS (a self-signed certificate when none is set)."""
    import uvicorn

    from replygate.bootstrap import build
    from replygate.db import migrate
    from replygate.web.app import create_app
    from replygate.web.tls import tls_files
    from replygate.worker.guard import hold_worker_lock

    with user_errors():
        overrides = {name: value for name, value in (("host", host), ("port", port)) if value}
        settings = settings_from(ctx, **overrides)
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        container = build(settings)
        if settings.run_migrations and not no_migrate:
            migrate.upgrade(container.engine)
        container.check_schema()
        container.verify_secret_key()
        # Refuse a second loop runner on SQLite now, with the fix, not in the app's start-up.
        lock = None if no_workers else hold_worker_lock(settings)
        tls = tls_files(settings)
        app = create_app(container, workers=not no_workers)

    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    typer.echo(f"replygate serving on https://{shown}:{settings.port}/")
    typer.echo(f"public URL: {settings.public_url}")
    if tls.self_signed:
        typer.echo(f"self-signed certificate: {tls.cert_file}")
        typer.echo(f"  SHA-256 fingerprint: {tls.fingerprint}")
    if no_workers:
        typer.echo("background loops: off (--no-workers)")
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
        proxy_headers=False,  # web.proxy decides, from REPLYGATE_TRUSTED_PROXIES only
        server_header=False,
        date_header=True,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        if lock is not None:
            lock.release()
    if not server.started:  # e.g. the port is taken; uvicorn has logged why
        raise typer.Exit(1)
