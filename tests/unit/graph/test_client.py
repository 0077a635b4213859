"""GraphClient: error mapping, Retry-After, backoff, the per-mailbox budget."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from replygate.errors import AuthorizationNeeded, ConfigurationError, InvalidInput, NotFound
from replygate.graph.client import Budget, GraphClient, SlidingWindow
from replygate.graph.errors import CursorExpired, GraphFailure, GraphTransient

from .fakes import Script, graph_error, make_client

BOX = "approvals@contoso.test"


@pytest.mark.parametrize(
    ("response", "kind", "words"),
    [
        (graph_error(403, "ErrorSendAsDenied"), ConfigurationError, "Grant Send As on " + BOX),
        (graph_error(403, "ErrorAccessDenied"), ConfigurationError, "Add-MailboxPermission"),
        (graph_error(404, "ErrorItemNotFound"), NotFound, "not found"),
        (graph_error(400, "ErrorInvalidRecipients"), InvalidInput, "recipients"),
        (graph_error(404, "MailboxNotEnabledForRESTAPI"), ConfigurationError, "Exchange Online"),
        (graph_error(401, "InvalidAuthenticationToken"), AuthorizationNeeded, "Authorize"),
        (graph_error(413, "ErrorMessageSizeExceeded"), InvalidInput, "larger"),
        (graph_error(410, "syncStateNotFound"), CursorExpired, "cursor"),
    ],
)
def test_errors_map_to_typed_errors_with_fixes(
    response: httpx.Response, kind: type[Exception], words: str
) -> None:
    client, sleeps = make_client(Script(response))
    with pytest.raises(kind) as caught:
        client.request("GET", "users/x/messages", mailbox=BOX)
    error = caught.value
    assert isinstance(error, GraphFailure)
    assert error.permanent
    assert error.code == response.json()["error"]["code"]
    assert words in str(error)
    assert error.request_id == "r1"
    assert sleeps.calls == []


def test_send_as_denied_names_mailbox_and_user() -> None:
    client, _ = make_client(Script(graph_error(403, "ErrorSendAsDenied")))
    with pytest.raises(ConfigurationError) as caught:
        client.request("POST", "users/x/messages/1/send", mailbox=BOX)
    assert f"Grant Send As on {BOX} to svc@contoso.test" in caught.value.fix


def test_access_denied_app_only_points_at_consent_and_policy() -> None:
    client, _ = make_client(Script(graph_error(403, "ErrorAccessDenied")), user=None)
    with pytest.raises(ConfigurationError) as caught:
        client.request("GET", "users/x/messages", mailbox=BOX)
    assert "application access policy" in caught.value.fix


def test_retry_after_is_obeyed_on_429_and_503() -> None:
    script = Script(
        graph_error(429, "ApplicationThrottled", **{"Retry-After": "7"}),
        graph_error(503, "serviceNotAvailable", **{"Retry-After": "2"}),
        httpx.Response(200, json={"ok": True}),
    )
    client, sleeps = make_client(script)
    assert client.get_json("users/x", mailbox=BOX) == {"ok": True}
    assert sleeps.calls == [7.0, 2.0]
    counts = client.counters.snapshot()[BOX]
    assert (counts.requests, counts.throttled, counts.retries) == (3, 1, 2)


def test_retry_after_longer_than_inline_wait_is_raised_not_slept() -> None:
    script = Script(graph_error(429, "ApplicationThrottled", **{"Retry-After": "300"}))
    client, sleeps = make_client(script, budget=Budget(max_inline_wait=60))
    with pytest.raises(GraphTransient) as caught:
        client.request("GET", "users/x", mailbox=BOX)
    assert caught.value.retry_after == 300
    assert not caught.value.permanent
    assert sleeps.calls == []


def test_backoff_is_exponential_bounded_and_attempts_are_limited() -> None:
    script = Script(*[graph_error(500, "InternalServerError") for _ in range(6)])
    client, sleeps = make_client(
        script, budget=Budget(max_attempts=6, backoff_base=1.0, backoff_cap=8.0)
    )
    with pytest.raises(GraphTransient):
        client.request("GET", "users/x", mailbox=BOX)
    assert sleeps.calls == [1.0, 2.0, 4.0, 8.0, 8.0]  # jitter pinned at its maximum
    assert len(script.requests) == 6


def test_full_jitter_stays_within_the_ceiling() -> None:
    client = GraphClient("https://g.test", budget=Budget(backoff_base=2, backoff_cap=30))
    for attempt in range(1, 10):
        ceiling = min(30, 2 * 2 ** (attempt - 1))
        assert ceiling / 2 <= client.backoff(attempt) <= ceiling
    client.close()


def test_non_idempotent_request_is_not_repeated_after_a_server_error() -> None:
    script = Script(graph_error(500, "InternalServerError"))
    client, sleeps = make_client(script)
    with pytest.raises(GraphTransient) as caught:
        client.request("POST", "users/x/messages", mailbox=BOX, idempotent=False)
    assert not caught.value.permanent  # the caller may try again later
    assert sleeps.calls == []
    assert len(script.requests) == 1


def test_non_idempotent_request_is_repeated_after_throttling() -> None:
    script = Script(
        graph_error(429, "ApplicationThrottled", **{"Retry-After": "1"}),
        httpx.Response(201, json={"id": "d"}),
    )
    client, sleeps = make_client(script)
    client.request("POST", "users/x/messages", mailbox=BOX, idempotent=False)
    assert sleeps.calls == [1.0]


def test_network_errors_are_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, sleeps = make_client(Script(handler=refuse), budget=Budget(max_attempts=2))
    with pytest.raises(GraphTransient):
        client.request("GET", "users/x", mailbox=BOX)
    assert len(sleeps.calls) == 1


def test_every_request_prefers_immutable_ids_and_has_a_request_id() -> None:
    script = Script(httpx.Response(200, json={}), httpx.Response(200, json={}))
    client, _ = make_client(script)
    client.get_json("users/x", mailbox=BOX, prefer=("odata.maxpagesize=10",))
    client.get_json("users/x", mailbox=BOX)
    first, second = script.requests
    assert first.headers["Prefer"] == 'IdType="ImmutableId", odata.maxpagesize=10'
    assert second.headers["Prefer"] == 'IdType="ImmutableId"'
    assert first.headers["client-request-id"] != second.headers["client-request-id"]
    assert str(first.url) == "https://graph.example.test/v1.0/users/x"


def test_at_most_four_requests_in_flight_per_mailbox() -> None:
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def slow(request: httpx.Request) -> httpx.Response:
        box = request.url.path.split("/")[3]
        with lock:
            active[box] = active.get(box, 0) + 1
            peak[box] = max(peak.get(box, 0), active[box])
        time.sleep(0.02)
        with lock:
            active[box] -= 1
        return httpx.Response(200, json={})

    client, _ = make_client(Script(handler=slow))
    threads = [
        threading.Thread(target=client.get_json, args=(f"users/{box}/x",), kwargs={"mailbox": box})
        for box in ("a", "b")
        for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == {"a": 4, "b": 4}


def test_sliding_window_never_allows_more_than_the_limit_in_any_window() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    window = SlidingWindow(10, 600.0, clock=lambda: now[0], sleeper=sleep, margin=0.0)
    for _ in range(10):
        window.take()
    assert slept == []
    now[0] = 100.0
    assert window.take() == pytest.approx(600.0)  # once the first event left the window
    window.take(5)  # the other nine left at the same moment
    assert len(slept) == 1
    window.take(6)
    assert sum(slept) == pytest.approx(1100.0)


def test_settled_events_count_from_their_completion() -> None:
    now = [0.0]
    window = SlidingWindow(1, 10.0, clock=lambda: now[0], sleeper=lambda s: None, margin=0.0)
    stamp = window.take()
    now[0] = 3.0  # the request took 3 s: the server may have seen it that late
    window.settle(stamp)
    now[0] = 12.0
    assert window._times == [3.0]
    now[0] = 13.0
    assert window.take() == 13.0


def test_batch_charges_every_inner_request_and_refuses_more_than_20() -> None:
    script = Script(httpx.Response(200, json={"responses": [{"id": "1", "status": 200}]}))
    client, _ = make_client(script)
    answers = client.batch(BOX, [{"id": "1", "method": "GET", "url": "/me"}] * 3)
    assert answers["1"]["status"] == 200
    assert client.counters.snapshot()[BOX].requests == 3
    with pytest.raises(ValueError, match="20"):
        client.batch(BOX, [{}] * 21)
