"""``replygate request create|status|wait|cancel``: approvals from a pipeline, over the API.

Exit codes: 0 approved (or created, without --wait), 1 rejected, 2 expired or timed out,
3 cancelled, 4 usage or connection error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click import Context  # typer vendors click: its classes, not the click package's
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

if TYPE_CHECKING:
    from replygate.cli.api_client import ApiClient

EXIT_USAGE = 4


class _PipelineGroup(TyperGroup):
    """Click exits 2 on a usage error; pipelines read 2 as "expired", so it is 4 here."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as error:
            error.exit_code = EXIT_USAGE
            raise


app = typer.Typer(
    cls=_PipelineGroup,
    help="Ask for an approval from a pipeline and wait for the answer (over the REST API).",
    no_args_is_help=True,
)

Url = Annotated[
    str | None,
    typer.Option("--url", envvar="REPLYGATE_URL", help="replygate's URL, e.g. https://rg:8443."),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="REPLYGATE_TOKEN", help="An API token (rgt_...).", show_default=False
    ),
]
CaFile = Annotated[
    Path | None,
    typer.Option(
        "--ca-file",
        envvar="REPLYGATE_CA_FILE",
        help="PEM CA certificate to trust (e.g. the server's self-signed certificate).",
        exists=True,
        dir_okay=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
Timeout = Annotated[str, typer.Option("--timeout", help="How long to wait in all (e.g. 30m, 4h).")]


def _fail(message: str, fix: str = "") -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    if fix:
        typer.echo(f"fix: {fix}", err=True)
    return typer.Exit(EXIT_USAGE)


@contextmanager
def _client(url: str | None, token: str | None, ca_file: Path | None) -> Iterator[ApiClient]:
    """The API client; every error becomes one clear line and exit code 4."""
    import httpx

    from replygate.cli.api_client import ApiClient, ApiError

    if not url:
        raise _fail("no server given", fix="pass --url or set REPLYGATE_URL")
    if not token:
        raise _fail("no API token given", fix="pass --token or set REPLYGATE_TOKEN")
    client = ApiClient(url, token, ca_file)
    try:
        yield client
    except ApiError as error:
        raise _fail(error.detail, error.fix) from None
    except httpx.TransportError as error:
        fix = "check --url; for a self-signed server pass --ca-file"
        raise _fail(f"cannot reach {url}: {error}", fix) from None
    finally:
        client.close()


def _seconds(text: str, option: str) -> float:
    from replygate.cli.durations import parse_duration

    try:
        return parse_duration(text).total_seconds()
    except ValueError as error:
        raise _fail(f"{option}: {error}") from None


def _pairs(values: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise _fail(f"--detail {value!r}: expected key=value")
        found[key.strip()] = text.strip()
    return found


def _markdown(value: str | None) -> str:
    """--details as given, or read from @FILE or - (standard input)."""
    if value is None:
        return ""
    if value == "-":
        return sys.stdin.read().strip()
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeError) as error:
            raise _fail(f"--details {value}: {error}") from None
    return value.strip()


def _details_text(details: dict[str, str], link: str | None) -> str:
    lines = [f"- **{key}**: {value}" for key, value in details.items()]
    if link:
        lines.append(f"- **link**: {link}")
    return "\n".join(lines)


@app.command()
def create(
    title: Annotated[str, typer.Option("--title", help="One line: what to approve.")],
    approver: Annotated[
        list[str], typer.Option("--approver", help="An approver's email (repeat for more).")
    ],
    policy: Annotated[str, typer.Option(help="any, all or quorum:N.")] = "any",
    expires_in: Annotated[str, typer.Option("--expires-in", help="e.g. 4h, 2d.")] = "24h",
    detail: Annotated[
        list[str] | None,
        typer.Option("--detail", help="key=value shown in the mail and kept as metadata."),
    ] = None,
    link: Annotated[str | None, typer.Option("--link", help="A URL (the pipeline run).")] = None,
    details_text: Annotated[
        str | None,
        typer.Option(
            "--details",
            help="Markdown shown in the mail above the --detail pairs (release notes...); "
            "@FILE reads it from a file, - from standard input.",
        ),
    ] = None,
    remind_after: Annotated[
        str | None,
        typer.Option("--remind-after", help="Remind approvers who have not answered, e.g. 2h."),
    ] = None,
    callback_url: Annotated[
        str | None,
        typer.Option(
            "--callback-url",
            help="An https URL that receives this request's webhook events (signed; the "
            "secret is in the --json output).",
        ),
    ] = None,
    allow_self_approval: Annotated[
        bool,
        typer.Option("--allow-self-approval", help="The requester may approve their own request."),
    ] = False,
    allow_delegates: Annotated[
        bool,
        typer.Option("--allow-delegates", help="Accept a reply sent on an approver's behalf."),
    ] = False,
    requester: Annotated[
        str | None, typer.Option("--requester", help="Who asks (default: the token's user).")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Same key again: the same request, not a new one."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the outcome.")] = False,
    timeout: Timeout = "30m",
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
    ca_file: CaFile = None,
) -> None:
    """Create an approval request; with --wait, exit with its outcome."""
    import time

    from replygate.cli.request_view import make_view, wait_for

    details = _pairs(detail or [])
    text = "\n\n".join(
        part for part in (_markdown(details_text), _details_text(details, link)) if part
    )
    body: dict[str, Any] = {
        "title": title,
        "approvers": approver,
        "policy": policy,
        "expires_in_seconds": int(_seconds(expires_in, "--expires-in")),
        "details": text,
        "metadata": {**details, **({"link": link} if link else {})},
        "allow_self_approval": allow_self_approval,
        "allow_delegates": allow_delegates,
    }
    if remind_after:
        body["remind_after_seconds"] = int(_seconds(remind_after, "--remind-after"))
    if callback_url:
        body["callback_url"] = callback_url
    if requester:
        body["requester"] = requester
    wait_seconds = _seconds(timeout, "--timeout")
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    with _client(url, token, ca_file) as client:
        status, request = client.call("POST", "/api/v1/approvals", json=body, headers=headers)
        if not wait:
            if as_json:
                typer.echo(json.dumps(request, indent=2))
            else:
                again = " (existing request for this idempotency key)" if status == 200 else ""
                typer.echo(f"created {request['token']}{again}: {request['title']}")
            return
        if not as_json and not sys.stdout.isatty():
            typer.echo(f"created {request['token']}")
        view = make_view(as_json, time.monotonic() + wait_seconds)
        code = wait_for(client, request, wait_seconds, view)
    raise typer.Exit(code)


@app.command()
def status(
    request_id: Annotated[str, typer.Argument(help="The request id or its RG-... token.")],
    as_json: AsJson = False,
    exit_status: Annotated[
        bool,
        typer.Option(
            "--exit-status",
            help="Exit with the request's state, as `wait` does: 0 approved, 1 rejected, "
            "2 expired, 3 cancelled, 5 still pending (4 stays usage or connection error).",
        ),
    ] = False,
    url: Url = None,
    token: Token = None,
    ca_file: CaFile = None,
) -> None:
    """Show a request: state, approvers and their answers, and its timeline. Exits 0 once
    shown, whatever the state, unless --exit-status is given."""
    from replygate.cli.request_view import EXIT_CODES, EXIT_PENDING, _decision_text

    with _client(url, token, ca_file) as client:
        _, request = client.call("GET", f"/api/v1/approvals/{request_id}")
    if as_json:
        typer.echo(json.dumps(request, indent=2))
    else:
        typer.echo(f"{request['token']}  {request['state']}  {request['title']}")
        typer.echo(f"policy {request['policy']}, expires {request['expires_at']}")
        for approver in request["approvers"]:
            typer.echo(f"  {approver['address']}: {_decision_text(approver)}")
        for entry in request.get("timeline", []):
            typer.echo(f"  {entry['at']}  {entry['kind']}: {entry['summary']}")
    if exit_status:
        raise typer.Exit(EXIT_CODES.get(request["state"], EXIT_PENDING))


@app.command("wait")
def wait_command(
    request_id: Annotated[str, typer.Argument(help="The request id or its RG-... token.")],
    timeout: Timeout = "30m",
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
    ca_file: CaFile = None,
) -> None:
    """Wait for a request's outcome: exit 0 approved, 1 rejected, 2 expired or timed out,
    3 cancelled, 4 error."""
    import time

    from replygate.cli.request_view import make_view, wait_for

    wait_seconds = _seconds(timeout, "--timeout")
    with _client(url, token, ca_file) as client:
        _, request = client.call("GET", f"/api/v1/approvals/{request_id}")
        view = make_view(as_json, time.monotonic() + wait_seconds)
        code = wait_for(client, request, wait_seconds, view)
    raise typer.Exit(code)


@app.command()
def cancel(
    request_id: Annotated[str, typer.Argument(help="The request id or its RG-... token.")],
    reason: Annotated[str, typer.Option(help="Told to the approvers.")] = "",
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
    ca_file: CaFile = None,
) -> None:
    """Cancel a pending request (its approvers are told)."""
    with _client(url, token, ca_file) as client:
        _, request = client.call(
            "POST", f"/api/v1/approvals/{request_id}/cancel", json={"reason": reason}
        )
    if as_json:
        typer.echo(json.dumps(request, indent=2))
    else:
        typer.echo(f"{request['token']} cancelled")
