"""The long-poll: returns when the request closes (whoever closes it), else at the timeout."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from replygate.bootstrap import Container
from replygate.domain.model import Verdict
from tests.integration.api.conftest import Caller, new_request
from tests.integration.api.test_approvals import decide
from tests.integration.web.conftest import TestClient


def create(client: TestClient, caller: Caller) -> str:
    answer = client.post("/api/v1/approvals", json=new_request(), headers=caller.headers)
    assert answer.status_code == 201, answer.text
    request_id: str = answer.json()["id"]
    return request_id


def test_wait_returns_when_another_thread_decides(
    client: TestClient, container: Container, requester: Caller
) -> None:
    request_id = create(client, requester)
    # A decision written straight to the database, as another process would: only the
    # periodic re-check can see it.
    timer = threading.Timer(
        0.5, decide, (container, request_id, "bob@contoso.test", Verdict.REJECT)
    )
    started = time.monotonic()
    timer.start()
    answer = client.get(
        f"/api/v1/approvals/{request_id}/wait?timeout=20", headers=requester.headers
    )
    elapsed = time.monotonic() - started
    timer.join()
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "rejected"
    assert answer.json()["decisions"][0]["approver"] == "bob@contoso.test"
    assert 0.5 <= elapsed < 5


def test_wait_times_out_with_the_request_still_pending(
    client: TestClient, requester: Caller
) -> None:
    request_id = create(client, requester)
    started = time.monotonic()
    answer = client.get(f"/api/v1/approvals/{request_id}/wait?timeout=1", headers=requester.headers)
    assert 1 <= time.monotonic() - started < 4
    assert answer.json()["state"] == "pending"


def test_closed_request_answers_at_once(
    client: TestClient, container: Container, requester: Caller
) -> None:
    request_id = create(client, requester)
    decide(container, request_id, "ann@contoso.test", Verdict.APPROVE)
    started = time.monotonic()
    answer = client.get(
        f"/api/v1/approvals/{request_id}/wait?timeout=60", headers=requester.headers
    )
    assert time.monotonic() - started < 1
    assert answer.json()["state"] == "approved"


def test_many_waiters_wake_together_on_a_cancel_in_this_process(
    client: TestClient, requester: Caller
) -> None:
    request_id = create(client, requester)
    url = f"/api/v1/approvals/{request_id}/wait?timeout=30"

    def wait() -> str:
        state: str = client.get(url, headers=requester.headers).json()["state"]
        return state

    with ThreadPoolExecutor(20) as pool:
        waiting = [pool.submit(wait) for _ in range(20)]
        time.sleep(0.5)
        started = time.monotonic()
        cancelled = client.post(f"/api/v1/approvals/{request_id}/cancel", headers=requester.headers)
        assert cancelled.status_code == 200
        states = [future.result(timeout=10) for future in waiting]
        # The in-process notice wakes them without waiting for the periodic re-check.
        assert time.monotonic() - started < 1.5
    assert states == ["cancelled"] * 20


@pytest.mark.parametrize("timeout", ["-1", "301", "soon"])
def test_wait_timeout_is_bounded(client: TestClient, requester: Caller, timeout: str) -> None:
    request_id = create(client, requester)
    answer = client.get(
        f"/api/v1/approvals/{request_id}/wait?timeout={timeout}", headers=requester.headers
    )
    assert answer.status_code == 422
    assert "timeout" in answer.json()["detail"]


def test_wait_for_an_unknown_request_is_404(client: TestClient, requester: Caller) -> None:
    answer = client.get("/api/v1/approvals/UNKNOWN123/wait?timeout=5", headers=requester.headers)
    assert answer.status_code == 404
