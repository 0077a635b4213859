"""``replygate apps ...``: the OAuth applications (Entra ID app registrations) replygate uses."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from replygate.cli.common import container_from, user_errors

if TYPE_CHECKING:
    from replygate.services.applications import ApplicationInput
    from replygate.services.ports import OAuthApplication

app = typer.Typer(
    help="OAuth applications: register, edit, list, remove (Authorize in the console).",
    no_args_is_help=True,
)


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date such as 2027-06-30") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A name for this application in replygate.")],
    tenant: Annotated[str, typer.Option(help="Directory (tenant) ID or a verified domain.")],
    client_id: Annotated[str, typer.Option(help="Application (client) ID from Entra ID.")],
    mode: Annotated[
        str, typer.Option(help="delegated (an account authorises) or app-only.")
    ] = "delegated",
    cloud: Annotated[
        str, typer.Option(help="global, us-gov, us-gov-dod, china or custom.")
    ] = "global",
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read the client secret from standard input.")
    ] = False,
    secret_expires: Annotated[
        str | None, typer.Option(help="The secret's expiry as Entra ID shows it (YYYY-MM-DD).")
    ] = None,
    certificate: Annotated[
        Path | None,
        typer.Option(help="PEM file with the certificate and its private key.", dir_okay=False),
    ] = None,
    authority_host: Annotated[str | None, typer.Option(help="Custom cloud only.")] = None,
    graph_url: Annotated[str | None, typer.Option(help="Custom cloud only.")] = None,
) -> None:
    """Register an application (a client secret from stdin, or a certificate file)."""
    from replygate.services.applications import ApplicationInput, register_application

    secret = sys.stdin.readline().strip() if secret_stdin else None
    pem = certificate.read_text() if certificate else None
    with user_errors():
        container = container_from(ctx)
        registered = register_application(
            container.uow(),
            container.clock,
            container.secrets,
            ApplicationInput(
                name=name,
                tenant=tenant,
                client_id=client_id,
                mode=mode,  # type: ignore[arg-type]
                cloud=cloud,
                client_secret=secret,
                secret_expires_at=_expiry(secret_expires),
                certificate_pem=pem,
                authority_host=authority_host,
                graph_url=graph_url,
            ),
            by="cli",
        )
        typer.echo(f"registered {registered.name!r} (id {registered.id})")
        if registered.mode == "delegated":
            from replygate.authorising import redirect_uri

            typer.echo(f"redirect URI to register in Entra ID: {redirect_uri(container)}")
            typer.echo(
                f"then Authorize at {container.settings.public_url}/oauth/authorize/{registered.id}"
            )


@app.command("update")
def update(
    ctx: typer.Context,
    app_id: Annotated[int, typer.Argument(help="The application's id (see apps list).")],
    name: Annotated[str | None, typer.Option(help="A new name in replygate.")] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Directory (tenant) ID or a verified domain.")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="A new Application (client) ID: needs a new credential.")
    ] = None,
    mode: Annotated[str | None, typer.Option(help="delegated or app-only.")] = None,
    cloud: Annotated[
        str | None,
        typer.Option(help="global, us-gov, us-gov-dod, china or custom: needs a new credential."),
    ] = None,
    secret_stdin: Annotated[
        bool,
        typer.Option("--secret-stdin", help="Read a new client secret from standard input."),
    ] = False,
    secret_expires: Annotated[
        str | None,
        typer.Option(
            help="The secret's expiry as Entra ID shows it (YYYY-MM-DD): with a new secret, "
            "or alone to correct the stored secret's date."
        ),
    ] = None,
    certificate: Annotated[
        Path | None,
        typer.Option(help="A new PEM file with certificate and private key.", dir_okay=False),
    ] = None,
    authority_host: Annotated[
        str | None, typer.Option(help="Custom cloud only; a new one needs a new credential.")
    ] = None,
    graph_url: Annotated[str | None, typer.Option(help="Custom cloud only.")] = None,
) -> None:
    """Edit an application: options left out keep their stored values, the credential too.

    A new tenant, client id, mode, cloud, authority host or Graph URL drops the authorised
    account (Authorize again); a new client id, cloud or authority host also needs a new
    credential.
    """
    from replygate.services.applications import get_application, update_application

    changes: dict[str, Any] = {
        "name": name,
        "tenant": tenant,
        "client_id": client_id,
        "mode": mode,
        "cloud": cloud,
        "client_secret": sys.stdin.readline().strip() if secret_stdin else None,
        "secret_expires_at": _expiry(secret_expires),
        "certificate_pem": certificate.read_text() if certificate else None,
        "authority_host": authority_host,
        "graph_url": graph_url,
    }
    with user_errors():
        container = container_from(ctx)
        stored = get_application(container.uow(), app_id)
        saved = update_application(
            container.uow(),
            container.clock,
            container.secrets,
            app_id,
            _edited(stored, changes),
            by="cli",
        )
        with container.uow() as uow:
            authorised = uow.token_caches.for_application(app_id) is not None
        typer.echo(f"saved {saved.name!r} (id {app_id})")
        if saved.mode == "delegated" and not authorised:
            url = f"{container.settings.public_url}/oauth/authorize/{app_id}"
            typer.echo(f"not authorised: Authorize at {url}")


def _edited(stored: OAuthApplication, changes: dict[str, Any]) -> ApplicationInput:
    """The stored settings with the options given; no credential unless one was given."""
    from replygate.services.applications import ApplicationInput

    kept = ApplicationInput(
        name=stored.name,
        tenant=stored.tenant,
        client_id=stored.client_id,
        mode="app-only" if stored.mode == "app-only" else "delegated",
        cloud=stored.cloud,
        authority_host=stored.authority_host,
        graph_url=stored.graph_url,
    )
    return replace(kept, **{k: v for k, v in changes.items() if v is not None})


@app.command("list")
def list_apps(ctx: typer.Context) -> None:
    """List registered applications with their credential expiry and authorised account."""
    from replygate.services.applications import list_applications

    with user_errors():
        container = container_from(ctx)
        for found in list_applications(container.uow()):
            expires = found.credential_expires_at
            with container.uow() as uow:
                cache = uow.token_caches.for_application(found.id or 0)
            account = (
                f"authorised as {cache.username} ({cache.state})" if cache else "not authorised"
            )
            typer.echo(
                f"{found.id}\t{found.name}\t{found.mode}\t{found.tenant}\t{found.credential_kind} "
                f"expires {expires:%Y-%m-%d}\t{account}"
                if expires
                else f"{found.id}\t{found.name}"
            )


@app.command("remove")
def remove(
    ctx: typer.Context, app_id: Annotated[int, typer.Argument(help="The application's id.")]
) -> None:
    """Remove an application and its stored tokens."""
    from replygate.services.applications import remove_application

    with user_errors():
        remove_application(container_from(ctx).uow(), app_id, by="cli")
        typer.echo(f"removed application {app_id}")
