"""The CLI's wait loop without a server: re-polls, rides out outages with backoff, exit codes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from replygate.cli.api_client import ApiError
from replygate.cli.durations import parse_duration
from replygate.cli.request_view import JsonView, LiveView, PlainView, wait_for


def request(state: str = "pending", **extra: Any) -> dict[str, Any]:
    return {
        "id": "7KQ2M9XW4D",
        "token": "RG-prod-7KQ2M9XW4D",
        "title": "Deploy",
        "policy": "any",
        "state": state,
        "closed_reason": "",
        "approvers": [
            {"address": "ann@contoso.test", "delivery_state": "pending", "decision": None}
        ],
        **extra,
    }


class ScriptedClient:
    """Answers (or failures) in order, like a server that comes and goes."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        self.calls.append({"method": method, "path": path, **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return 200, answer


def test_outages_are_ridden_out_with_backoff(capsys: pytest.CaptureFixture[str]) -> None:
    client = ScriptedClient(
        httpx.ConnectError("refused"),
        ApiError(503, "restarting"),
        httpx.ReadTimeout("slow"),
        request(),
        request("approved"),
    )
    pauses: list[float] = []
    code = wait_for(client, request(), 600, PlainView(), sleep=pauses.append)  # type: ignore[arg-type]
    assert code == 0
    assert pauses == [1.0, 2.0, 4.0]
    assert all(c["path"] == "/api/v1/approvals/7KQ2M9XW4D/wait" for c in client.calls)
    err = capsys.readouterr().err
    assert err.count("replygate unreachable") == 3


def test_a_refusal_is_not_retried() -> None:
    client = ScriptedClient(ApiError(401, "the API token is not valid"))
    with pytest.raises(ApiError):
        wait_for(client, request(), 600, PlainView(), sleep=lambda _: None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "code"), [("approved", 0), ("rejected", 1), ("expired", 2), ("cancelled", 3)]
)
def test_exit_codes(state: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    client = ScriptedClient(request(state))
    assert wait_for(client, request(), 60, JsonView()) == code  # type: ignore[arg-type]
    assert f'"exit_code": {code}' in capsys.readouterr().out


def test_overall_timeout_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    client = ScriptedClient()
    assert wait_for(client, request(), 0, JsonView()) == 2  # type: ignore[arg-type]
    assert '"timed_out": true' in capsys.readouterr().out


def test_live_view_renders_answers() -> None:
    decided = request(
        "approved",
        approvers=[
            {
                "address": "ann@contoso.test",
                "delivery_state": "pending",
                "decision": {"verdict": "approve", "comment": "go"},
            }
        ],
    )
    view = LiveView(deadline=0)
    view.show(request())
    view.finish(decided, timed_out=False)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("30m", 1800), ("4h", 14400), ("90d", 7776000), ("1h30m", 5400), ("120", 120)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "4x", "1h and", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
