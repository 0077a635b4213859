"""How the pipeline CLI shows a request: a live table in a terminal, plain lines in CI logs,
one JSON object with ``--json``; and the wait loop behind ``--wait`` and ``request wait``."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import RenderableType

    from replygate.cli.api_client import ApiClient

EXIT_APPROVED, EXIT_REJECTED, EXIT_EXPIRED, EXIT_CANCELLED, EXIT_USAGE = 0, 1, 2, 3, 4
EXIT_CODES = {"approved": 0, "rejected": 1, "expired": 2, "cancelled": 3}
EXIT_PENDING = 5  # only `status --exit-status` reports a request still open
CHUNK_TTY = 5.0  # a terminal's table refreshes this often (decisions before the close)
CHUNK_PLAIN = 15.0
MAX_BACKOFF = 30.0


class View(Protocol):
    def show(self, request: dict[str, Any]) -> None: ...

    def note(self, text: str) -> None: ...

    def finish(self, request: dict[str, Any], timed_out: bool) -> None: ...


def _decision_text(approver: dict[str, Any]) -> str:
    decision = approver.get("decision")
    if decision:
        comment = f": {decision['comment']}" if decision.get("comment") else ""
        done = {"approve": "approved", "reject": "rejected"}.get(decision["verdict"], "decided")
        return f"{done}{comment}"
    if approver.get("delivery_state") == "failed":
        return f"mail failed ({approver.get('delivery_error', '')})"
    return "waiting"


@dataclass
class PlainView:
    """One line per change: readable in CI logs, nothing redrawn."""

    seen: set[str] = field(default_factory=set)
    started: bool = False

    def show(self, request: dict[str, Any]) -> None:
        if not self.started:
            self.started = True
            print(
                f"waiting for {request['token']} ({request['policy']}, "
                f"{len(request['approvers'])} approver(s)): {request['title']}",
                flush=True,
            )
        for approver in request["approvers"]:
            line = f"{approver['address']} {_decision_text(approver)}"
            answered = approver.get("decision") or approver.get("delivery_state") == "failed"
            if answered and line not in self.seen:
                self.seen.add(line)
                print(line, flush=True)

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def finish(self, request: dict[str, Any], timed_out: bool) -> None:
        self.show(request)
        if timed_out:
            print(f"{request['token']} still {request['state']}: gave up waiting", flush=True)
        else:
            reason = f" ({request['closed_reason']})" if request.get("closed_reason") else ""
            print(f"{request['token']} {request['state']}{reason}", flush=True)


class JsonView:
    """Nothing while waiting; one JSON object at the end."""

    def show(self, request: dict[str, Any]) -> None:
        pass

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def finish(self, request: dict[str, Any], timed_out: bool) -> None:
        state = request["state"]
        code = EXIT_EXPIRED if timed_out else EXIT_CODES.get(state, EXIT_USAGE)
        print(json.dumps({**request, "timed_out": timed_out, "exit_code": code}, indent=2))


class LiveView:
    """A Rich table redrawn in place: who has answered, and how long is left."""

    def __init__(self, deadline: float) -> None:
        from rich.console import Console
        from rich.live import Live

        self._deadline = deadline
        self._console = Console()
        self._live = Live(console=self._console, refresh_per_second=2, transient=False)
        self._live.start()

    def _render(self, request: dict[str, Any]) -> RenderableType:
        from rich.table import Table

        left = max(0, int(self._deadline - time.monotonic()))
        caption = (
            f"{request['state']} · policy {request['policy']} · {left // 60}m{left % 60:02d}s left"
        )
        table = Table(title=f"{request['token']}: {request['title']}", caption=caption)
        table.add_column("approver")
        table.add_column("answer")
        styles = {"approve": "green", "reject": "red"}
        for approver in request["approvers"]:
            decision = approver.get("decision") or {}
            style = styles.get(decision.get("verdict", ""), "")
            table.add_row(approver["address"], _decision_text(approver), style=style)
        return table

    def show(self, request: dict[str, Any]) -> None:
        self._live.update(self._render(request))

    def note(self, text: str) -> None:
        self._console.print(text, style="yellow")

    def finish(self, request: dict[str, Any], timed_out: bool) -> None:
        self._live.update(self._render(request))
        self._live.stop()
        verdict = "gave up waiting" if timed_out else request["state"]
        self._console.print(f"{request['token']}: {verdict}", style="bold")


def make_view(as_json: bool, deadline: float) -> View:
    if as_json:
        return JsonView()
    if sys.stdout.isatty():
        return LiveView(deadline)
    return PlainView()


def wait_for(
    client: ApiClient,
    request: dict[str, Any],
    timeout: float,
    view: View,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Re-issue long-polls until the request closes or ``timeout`` passes; ride out
    connection errors and 5xx answers with backoff. Return the exit code."""
    import httpx

    from replygate.cli.api_client import ApiError

    deadline = time.monotonic() + timeout
    chunk = CHUNK_TTY if isinstance(view, LiveView) else CHUNK_PLAIN
    pause = 1.0
    view.show(request)
    while request["state"] == "pending":
        left = deadline - time.monotonic()
        if left <= 0:
            view.finish(request, timed_out=True)
            return EXIT_EXPIRED
        poll = min(chunk, left)
        try:
            _, request = client.call(
                "GET",
                f"/api/v1/approvals/{request['id']}/wait",
                params={"timeout": round(poll, 1)},
                timeout=poll + 30,
            )
            pause = 1.0
        except (httpx.TransportError, ApiError) as error:
            if isinstance(error, ApiError) and not error.transient:
                raise
            view.note(f"replygate unreachable ({_short(error)}); retrying in {pause:.0f}s")
            sleep(min(pause, max(left, 0)))
            pause = min(pause * 2, MAX_BACKOFF)
            continue
        view.show(request)
    view.finish(request, timed_out=False)
    return EXIT_CODES.get(request["state"], EXIT_USAGE)


def _short(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) < 120 else text[:117] + "..."
