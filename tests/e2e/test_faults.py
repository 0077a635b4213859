"""Microsoft misbehaving while requests are sent and replies read, through the emulator.

- 30% of Graph calls answer 429 or 503 (and the quota is small enough that the emulator's
  throttle answers 429 with Retry-After too): every request is still sent once, every reply
  decided once and disposed of, and no request goes out before a Retry-After elapsed;
- latency spikes on 30% of calls cause no duplicate;
- Retry-After named by throttled `$batch` steps;
- a refresh token revoked mid-run: the worker stops, says re-authorisation is needed (in its
  round errors and the mail flow health check behind /healthz), and resumes after it with
  the waiting mail sent once;
- the delta cursor invalidated (410): the folder is read again, nothing decided twice.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from bench.backlog import SentRequest, create_sent_requests
from sqlalchemy import func, select

from m365emu.state import FaultRule, Faults
from m365emu.tenant import AppSecret
from m365emu.testing import RunningEmulator
from replygate import mailflow
from replygate.bootstrap import Container
from replygate.db.tables import (
    ApprovalRequestRow,
    DecisionRow,
    InboundLedgerRow,
    OutboxRow,
    TokenCacheRow,
)
from replygate.graph.client import Budget
from replygate.graph.connection import connect
from replygate.graph.sender import Pacing
from replygate.services.applications import update_application
from replygate.services.configuring import current_settings, parse_settings, save_settings
from replygate.services.requesting import RequestDraft, create_request
from replygate.web.credential_health import credential_check
from replygate.web.mail_health import mail_flow_check
from replygate.worker.loops import RoundReport, Worker
from tests.e2e.conftest import SHARED, configure
from tests.e2e.test_mailflow import authorise, deliver, messages
from tests.support.emulator_app import emulator_application

APPROVERS = ["alice@contoso.test", "bob@contoso.test"]
UNRELATED = (
    b"From: newsletter@example.org\r\nTo: approvals@contoso.test\r\nSubject: Weekly news\r\n"
    b"Message-ID: <news-faults@example.org>\r\n\r\nNothing to approve here.\r\n"
)


class RandomFaults(Faults):
    """The emulator's fault injection, drawn at random: a `share` of Graph calls matching
    `pattern` fail with 429 or 503 and/or wait `latency_ms` first."""

    def __init__(
        self, share: float, *, statuses: tuple[int, ...] = (429, 503), latency_ms: int = 0
    ) -> None:
        super().__init__()
        self.share, self.statuses, self.latency_ms = share, statuses, latency_ms
        self.random = random.Random(2026)
        self.injected: dict[int, int] = {}

    def take(self, endpoint: str) -> FaultRule | None:
        # The emulator asks twice per call (concrete path, then template): draw on the first.
        if "{" in endpoint or not fnmatch.fnmatchcase(endpoint, "* /v1.0/*"):
            return super().take(endpoint)
        if self.random.random() >= self.share:
            return super().take(endpoint)
        status = self.random.choice(self.statuses) if self.statuses else 0
        self.injected[status] = self.injected.get(status, 0) + 1
        code = {429: "TooManyRequests", 503: "ServiceNotAvailable"}.get(status, "")
        latency = self.random.randint(self.latency_ms // 4, self.latency_ms)
        return FaultRule(endpoint, status, code, latency_ms=latency)


@dataclass
class Exchange:
    method: str
    url: str
    sent: float
    answered: float
    status: int
    retry_after: float | None  # the answer's own Retry-After
    step_retry_after: float | None = None  # the longest of a $batch's throttled steps


def early_calls(log: list[Exchange], *, steps: bool) -> list[tuple[Exchange, float]]:
    """Calls that went out before a named Retry-After had elapsed: the answer that named it
    and how soon the next call followed. One worker's client calls one at a time."""
    early = []
    for answer, following in itertools.pairwise(log):
        wait = answer.step_retry_after if steps else answer.retry_after
        if answer.status >= 429 or steps:
            gap = following.sent - answer.answered
            if wait is not None and gap < wait - 0.01:
                early.append((answer, gap))
    return early


@dataclass
class Recorder(httpx.BaseTransport):
    """What went over the wire to Graph, with times: to check Retry-After was obeyed."""

    inner: httpx.BaseTransport
    log: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        response = self.inner.handle_request(request)
        after = response.headers.get("Retry-After")
        step_after = self._step_retry_after(request, response)
        with self.lock:
            self.log.append(
                Exchange(
                    request.method,
                    str(request.url),
                    sent,
                    time.monotonic(),
                    response.status_code,
                    float(after) if after else None,
                    step_after,
                )
            )
        return response

    @staticmethod
    def _step_retry_after(request: httpx.Request, response: httpx.Response) -> float | None:
        """The longest Retry-After among a $batch's throttled steps."""
        if not request.url.path.endswith("/$batch") or response.status_code != 200:
            return None
        response.read()
        waits = [
            float((step.get("headers") or {}).get("Retry-After") or 0)
            for step in response.json().get("responses", [])
            if step.get("status") in (429, 503)
        ]
        return max(waits) if waits and max(waits) > 0 else None

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def wire(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Graph connections record their traffic; quick backoff; pacing scaled to 30 per 6 s."""
    context = ssl.create_default_context(cafile=str(emu.ca_file))
    recorder = Recorder(httpx.HTTPTransport(verify=context))
    budget = Budget(backoff_base=0.05, backoff_cap=0.4, max_attempts=8)
    wired = functools.partial(
        connect, transport=recorder, budget=budget, pacing=Pacing(messages=30, per_seconds=6)
    )
    monkeypatch.setattr(mailflow, "connect", wired)
    return recorder


def create(container: Container, count: int, title: str = "Deploy") -> list[tuple[str, str]]:
    """`count` requests to Alice and Bob (any one decides); their ids and tokens."""
    made = []
    for index in range(count):
        draft = RequestDraft(
            title=f"{title} {index}",
            approvers=APPROVERS,
            requester="ci@contoso.test",
            expires_in=timedelta(hours=4),
        )
        created = create_request(container.uow(), container.clock, "e2e", draft, created_by="t")
        made.append((created.request.id, str(created.token)))
    return made


def settle(worker: Worker, done: Callable[[], bool], rounds: int = 60) -> list[RoundReport]:
    reports = []
    for _ in range(rounds):
        reports.append(worker.run_once())
        if done():
            return reports
    raise AssertionError(f"not settled after {rounds} rounds; last errors {worker.last_errors}")


def keep_processed_replies(container: Container) -> None:
    current = current_settings(container.uow())
    assert current is not None
    values = {**current[1].model_dump(exclude_none=True), "processed_replies": "keep"}
    settings = parse_settings(values)
    save_settings(container.uow(), container.clock, container.secrets, settings, by="test")


def scalar(container: Container, query: Any) -> Any:
    with container.engine.connect() as connection:
        return connection.scalar(query)


def outbox_open(container: Container) -> int:
    query = select(func.count()).select_from(OutboxRow).where(OutboxRow.state != "sent")
    return int(scalar(container, query))


def reply_to_requests(control: httpx.Client, approver: str, text: str, tokens: list[str]) -> None:
    """The approver answers each request mail in their inbox, as Outlook on the web would."""
    for mail in messages(control, approver, "inbox"):
        if any(f"[{token}]" in mail["subject"] for token in tokens):
            answer = control.post(
                f"/_emu/ui/{approver}/messages/{mail['id']}/reply", data={"text": text}
            )
            assert answer.status_code == 303


def assert_sent_exactly_once(control: httpx.Client, container: Container) -> None:
    """Every outbox row is sent, once: Sent Items holds each Message-ID once, no draft left."""
    with container.engine.connect() as connection:
        rows = connection.execute(select(OutboxRow.state, OutboxRow.internet_message_id)).all()
    assert {state for state, _ in rows} == {"sent"}
    sent = [m["internetMessageId"] for m in messages(control, SHARED, "sentitems")]
    assert sorted(sent) == sorted(str(mid) for _, mid in rows)
    assert len(set(sent)) == len(sent)
    assert messages(control, SHARED, "drafts") == []


def assert_decided_once(container: Container, requests: list[tuple[str, str]]) -> None:
    with container.engine.connect() as connection:
        decided = connection.execute(
            select(DecisionRow.request_id, DecisionRow.approver, DecisionRow.verdict)
        ).all()
        rows = connection.execute(select(ApprovalRequestRow.id, ApprovalRequestRow.state)).all()
    states = {request_id: state for request_id, state in rows}
    assert sorted(r for r, _, _ in decided) == sorted(r for r, _ in requests)
    assert {(a, v) for _, a, v in decided} == {("alice@contoso.test", "approve")}
    assert {states[r] for r, _ in requests} == {"approved"}


@pytest.mark.parametrize("count", [8, pytest.param(24, marks=pytest.mark.slow)])
def test_throttling_and_failures_lose_nothing_and_repeat_nothing(
    emu: RunningEmulator, control: httpx.Client, container: Container, wire: Recorder, count: int
) -> None:
    configure(container, emu, mode="app-only", folder="Inbox")
    deliver(control, UNRELATED)
    faults = RandomFaults(0.3)
    emu.state.faults = faults
    # A small quota, so the emulator's own throttle answers 429 with Retry-After as well.
    limits = {"requests_per_window": 12, "window_seconds": 3}
    control.put("/_emu/throttling", json=limits).raise_for_status()
    requests = create(container, count)
    tokens = [token for _, token in requests]
    worker = Worker(container)
    settle(worker, lambda: outbox_open(container) == 0)
    reply_to_requests(control, "alice@contoso.test", "Approved", tokens)
    late = tokens[: count // 2]
    reply_to_requests(control, "bob@contoso.test", "Rejected", late)  # too late: closed
    settle(
        worker,
        lambda: len(messages(control, SHARED, "inbox")) == 1 and outbox_open(container) == 0,
    )
    worker.close()
    emu.state.faults = Faults()

    assert faults.injected.get(429, 0) > 0
    assert faults.injected.get(503, 0) > 0
    assert_sent_exactly_once(control, container)
    for approver in APPROVERS:  # one request mail per request per approver
        subjects = [m["subject"] for m in messages(control, approver, "inbox")]
        for token in tokens:
            assert sum(s.startswith(f"[{token}]") for s in subjects) == 1
    assert_decided_once(container, requests)
    replies = int(scalar(container, select(func.count()).select_from(InboundLedgerRow)))
    assert replies == len(tokens) + len(late) + 1  # Alice's, Bob's, the newsletter: once each
    assert [m["subject"] for m in messages(control, SHARED, "inbox")] == ["Weekly news"]

    # Retry-After obeyed: after a 429 or 503 that named a wait, the next call went out no
    # sooner (the waits that throttled $batch steps name: see the test below).
    assert any(e.status == 429 and e.retry_after for e in wire.log)
    assert early_calls(wire.log, steps=False) == []
    seen_429 = sum(e.status == 429 for e in wire.log)
    counted = control.get("/_emu/counters").json()["totals"]["throttled"]
    assert counted >= seen_429 > 0  # the emulator counts $batch steps' 429s too


def test_throttled_batch_steps_hold_back_the_next_call(
    emu: RunningEmulator, control: httpx.Client, container: Container, wire: Recorder
) -> None:
    configure(container, emu, mode="app-only", folder="Inbox")
    sent = create_sent_requests(container, ["alice@contoso.test"] * 45)
    for index, request in enumerate(sent):
        deliver(control, approval(request, index))
    # The delta page and the first chunk fit the quota; the second chunk's steps run out.
    limits = {"requests_per_window": 30, "window_seconds": 3}
    control.put("/_emu/throttling", json=limits).raise_for_status()
    worker = Worker(container)
    settle(worker, lambda: messages(control, SHARED, "inbox") == [])
    worker.close()
    assert any(e.step_retry_after for e in wire.log)
    assert early_calls(wire.log, steps=True) == []


def approval(request: SentRequest, serial: int) -> bytes:
    return (
        f"From: alice@contoso.test\r\nTo: {SHARED}\r\n"
        f"Subject: RE: [{request.token}] Deploy\r\n"
        f"Message-ID: <approval-{serial}@contoso.test>\r\nIn-Reply-To: {request.message_id}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nApproved\r\n"
    ).encode()


def test_latency_spikes_cause_no_duplicates(
    emu: RunningEmulator, control: httpx.Client, container: Container, wire: Recorder
) -> None:
    configure(container, emu, mode="app-only", folder="Inbox")
    faults = RandomFaults(0.3, statuses=(), latency_ms=1200)
    emu.state.faults = faults
    requests = create(container, 4)
    tokens = [token for _, token in requests]
    worker = Worker(container)
    settle(worker, lambda: outbox_open(container) == 0)
    reply_to_requests(control, "alice@contoso.test", "Approved", tokens)
    settle(worker, lambda: messages(control, SHARED, "inbox") == [] and outbox_open(container) == 0)
    worker.close()
    emu.state.faults = Faults()

    assert faults.injected.get(0, 0) > 0
    assert_sent_exactly_once(control, container)
    assert_decided_once(container, requests)


def revoke_sign_in(control: httpx.Client) -> None:
    """The account's sessions are revoked and the cached access token runs out."""
    assert control.post("/_emu/users/svc-replygate@contoso.test/revoke").json()["revoked"] >= 1
    control.post("/_emu/clock/advance", json={"seconds": 2 * 3600}).raise_for_status()


def test_revoked_sign_in_stops_the_mailbox_and_says_authorise_again(
    emu: RunningEmulator, control: httpx.Client, container: Container, wire: Recorder
) -> None:
    configure(container, emu, mode="delegated", folder="Inbox")
    authorise(container, emu, "svc-replygate@contoso.test")
    worker = Worker(container)
    create(container, 1, "Before")
    settle(worker, lambda: outbox_open(container) == 0)

    revoke_sign_in(control)
    calls = len(wire.log)
    for _ in range(2):
        report = worker.run_once()
        assert "read" in report.errors
    assert "Press Authorize" in worker.last_errors["read"], worker.last_errors
    assert "revoked" in worker.last_errors["read"]
    # Stopped: the only Graph calls were refused for the expired token (a refresh was
    # tried once per round and refused); nothing was read, moved or sent.
    during = wire.log[calls:]
    assert {e.status for e in during} == {401}
    assert len(during) <= 2 * 3  # at most one refused call per step that needs Graph
    worker.close()


def sign_in_state(container: Container) -> str:
    state = scalar(container, select(TokenCacheRow.state))
    return str(state)


def test_worker_resumes_after_authorising_again(
    emu: RunningEmulator, control: httpx.Client, container: Container, wire: Recorder
) -> None:
    configure(container, emu, mode="delegated", folder="Inbox")
    authorise(container, emu, "svc-replygate@contoso.test")
    worker = Worker(container)
    create(container, 1, "Before")
    settle(worker, lambda: outbox_open(container) == 0)

    revoke_sign_in(control)
    create(container, 1, "During")
    worker.run_once()
    with container.engine.connect() as connection:
        states = list(
            connection.scalars(select(OutboxRow.state).where(OutboxRow.sent_at.is_(None)))
        )
    assert states == ["pending"]  # waiting for the sign-in, not failed for good
    health = mail_flow_check(container)  # what /healthz shows
    assert health.status == "failing"
    assert "Press Authorize" in health.detail, health.detail
    # The stored sign-in says so too: the console's token state, metrics, credential check.
    assert sign_in_state(container) == "needs-sign-in"
    credentials = credential_check(container)
    assert credentials.status == "failing"
    assert "needs a new sign-in" in credentials.detail, credentials.detail

    authorise(container, emu, "svc-replygate@contoso.test")
    settle(worker, lambda: outbox_open(container) == 0, rounds=5)
    worker.run_once()
    assert worker.last_errors == {}
    assert sign_in_state(container) == "ok"
    assert credential_check(container).status == "ok"
    worker.close()
    assert mail_flow_check(container).status == "ok"
    assert_sent_exactly_once(control, container)
    titles = [m["subject"] for m in messages(control, "alice@contoso.test", "inbox")]
    assert sum("During 0" in t for t in titles) == 1


def test_a_new_secret_saved_on_the_application_is_used_without_a_restart(
    emu: RunningEmulator, control: httpx.Client, container: Container, wire: Recorder
) -> None:
    configure(container, emu, mode="app-only", folder="Inbox")
    worker = Worker(container)
    create(container, 1, "Before")
    settle(worker, lambda: outbox_open(container) == 0)

    # In Entra: a new secret is added, the old one runs out, the cached token too.
    registration = emu.state.tenant.app_by(emu.client_id)
    assert registration is not None
    old = [secret.id for secret in registration.secrets]
    far = emu.state.now() + timedelta(days=365)
    registration.secrets.append(AppSecret("rotated", "a-brand-new-secret-value", far))
    for secret_id in old:
        control.post(f"/_emu/apps/{emu.client_id}/secrets/expire", json={"secret_id": secret_id})
    control.post("/_emu/clock/advance", json={"seconds": 2 * 3600}).raise_for_status()
    create(container, 1, "During")
    worker.run_once()
    assert "client secret expired" in worker.last_errors["read"], worker.last_errors
    with container.engine.connect() as connection:
        waiting = connection.execute(
            select(OutboxRow.state, OutboxRow.last_error).where(OutboxRow.sent_at.is_(None))
        ).all()
    # The request mail waits for the admin (it is not the mail's fault), not failed for good.
    assert [state for state, _ in waiting] == ["pending"]
    assert "client secret expired" in str(waiting[0][1])

    # The admin pastes the new secret into replygate; the running worker picks it up.
    with container.uow() as uow:
        stored = uow.applications.by_name("emulator")
        assert stored is not None
        assert stored.id is not None
    edit = emulator_application(
        emu, mode="app-only", client_secret="a-brand-new-secret-value", expires_at=far
    )
    update_application(
        container.uow(), container.clock, container.secrets, stored.id, edit, by="test"
    )
    settle(worker, lambda: outbox_open(container) == 0, rounds=5)
    worker.close()
    assert_sent_exactly_once(control, container)


def test_invalidated_delta_cursor_reads_again_without_deciding_twice(
    emu: RunningEmulator, control: httpx.Client, container: Container, wire: Recorder
) -> None:
    configure(container, emu, mode="app-only", folder="Inbox")
    keep_processed_replies(container)  # so that a resync sees the processed ones again
    requests = create(container, 3)
    tokens = [token for _, token in requests]
    worker = Worker(container)
    settle(worker, lambda: outbox_open(container) == 0)
    reply_to_requests(control, "alice@contoso.test", "Approved", tokens)
    settle(worker, lambda: int(scalar(container, select(func.count(DecisionRow.id)))) == 3)
    before = int(scalar(container, select(func.count()).select_from(InboundLedgerRow)))

    control.post("/_emu/delta/invalidate").raise_for_status()
    reply_to_requests(control, "bob@contoso.test", "Approved", tokens[:1])  # closed already
    reports = settle(worker, lambda: outbox_open(container) == 0, rounds=5)
    worker.close()

    assert any(r.read is not None and r.read.resynced for r in reports)
    assert_decided_once(container, requests)
    after = int(scalar(container, select(func.count()).select_from(InboundLedgerRow)))
    assert after == before + 1  # only Bob's new reply is new; the kept ones were known
    assert len(messages(control, SHARED, "inbox")) == 4  # kept, as the settings say
