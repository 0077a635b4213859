"""EmulatorState: everything the running emulator knows, shared by the identity and Graph halves.

Time: every component reads time through `state.now()` (the `clock` plus an offset), so tests
can freeze the clock (`state.clock = lambda: fixed`) or jump ahead (`state.advance_clock`).

Threads: the server runs in one event-loop thread while tests call the control hooks from
another, so hooks take `state.lock` (re-entrant). Request handlers that mutate state take it
too; it is never held across an `await`.

The Graph half stores its mail store in `state.mail` (typed `object | None` here so that this
module does not depend on it) and records per-(client, mailbox, endpoint) traffic in
`state.counters`; `state.faults` holds injected failures; `state.throttling` the limits.
"""

from __future__ import annotations

import fnmatch
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from m365emu.identity.keys import SigningKey
from m365emu.identity.store import IdentityStore
from m365emu.tenant import Tenant, default_tenant


def utc_now() -> datetime:
    return datetime.now(UTC)


CounterKey = tuple[str, str, str]  # (client_id, mailbox upn or "", endpoint)


@dataclass(slots=True)
class Counters:
    """Request counters: what benchmarks read to count Graph calls."""

    requests: Counter[CounterKey] = field(default_factory=Counter)
    throttled: Counter[CounterKey] = field(default_factory=Counter)
    batched: Counter[CounterKey] = field(default_factory=Counter)  # of `requests`: $batch steps

    def record(self, client_id: str, mailbox: str, endpoint: str, batched: bool = False) -> None:
        self.requests[(client_id, mailbox, endpoint)] += 1
        if batched:
            self.batched[(client_id, mailbox, endpoint)] += 1

    def record_throttled(self, client_id: str, mailbox: str, endpoint: str) -> None:
        self.throttled[(client_id, mailbox, endpoint)] += 1

    def snapshot(self) -> list[dict[str, object]]:
        keys = sorted(set(self.requests) | set(self.throttled))
        return [
            {
                "client_id": k[0],
                "mailbox": k[1],
                "endpoint": k[2],
                "requests": self.requests[k],
                "throttled": self.throttled[k],
                "batched": self.batched[k],
            }
            for k in keys
        ]

    def reset(self) -> None:
        self.requests.clear()
        self.throttled.clear()
        self.batched.clear()


@dataclass(slots=True)
class FaultRule:
    """The next `remaining` calls whose endpoint matches `endpoint_pattern` (an fnmatch glob,
    e.g. ``"POST /v1.0/users/*/sendMail"``) fail with `status`/`error_code`; `latency_ms` is
    added first. status 0 means "only add latency, then answer normally"."""

    endpoint_pattern: str
    status: int
    error_code: str
    remaining: int = 1
    latency_ms: int = 0
    message: str = "Fault injected by the emulator."
    retry_after: int | None = None  # seconds, sent as Retry-After (as Graph does on 429/503)


@dataclass(slots=True)
class Faults:
    rules: list[FaultRule] = field(default_factory=list)

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)

    def take(self, endpoint: str) -> FaultRule | None:
        """The first rule matching `endpoint`, consuming one of its uses (None if none)."""
        for rule in self.rules:
            if rule.remaining > 0 and fnmatch.fnmatchcase(endpoint, rule.endpoint_pattern):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.rules.remove(rule)
                return rule
        return None

    def clear(self) -> None:
        self.rules.clear()


@dataclass(slots=True)
class Throttling:
    """Exchange's documented limits per app per mailbox (configurable for benchmarks)."""

    requests_per_window: int = 10_000
    window_seconds: int = 600
    max_concurrent: int = 4


class EmulatorState:
    """The live state of one emulator instance."""

    def __init__(self, tenant: Tenant | None = None, *, public_base: str | None = None) -> None:
        self.tenant: Tenant = tenant if tenant is not None else default_tenant()
        self.clock: Callable[[], datetime] = utc_now
        self.clock_offset = timedelta(0)
        self.public_base = public_base  # set by create_app; used to build absolute URLs
        self.lock = threading.RLock()
        self.signing_key = SigningKey.generate()
        self.identity = IdentityStore()
        self.counters = Counters()
        self.faults = Faults()
        self.throttling = Throttling()
        self.mail: object | None = None  # the Graph half's mail store

    def now(self) -> datetime:
        """The emulator's current time (aware UTC)."""
        return self.clock() + self.clock_offset

    # --- control hooks (the Graph half exposes them under /_emu/) ----------------------

    def advance_clock(self, seconds: float) -> datetime:
        with self.lock:
            self.clock_offset += timedelta(seconds=seconds)
            return self.now()

    def revoke_refresh_tokens(self, upn: str) -> int:
        """Revoke a user's refresh tokens and sign-in sessions (AADSTS50173 on next refresh)."""
        with self.lock:
            user = self.tenant.user_by(upn)
            if user is None:
                raise KeyError(f"no user {upn!r}")
            return self.identity.revoke_user(user.id)

    def expire_secret(self, client_id: str, secret_id: str | None = None) -> None:
        """Make one secret (or all of an app's secrets) expired as of now (AADSTS7000222)."""
        with self.lock:
            app = self.tenant.app_by(client_id)
            if app is None:
                raise KeyError(f"no app {client_id!r}")
            hit = [s for s in app.secrets if secret_id is None or s.id == secret_id]
            if not hit:
                raise KeyError(f"no secret {secret_id!r} on app {client_id!r}")
            for secret in hit:
                secret.expires_at = self.now() - timedelta(seconds=1)

    def set_consent(
        self, client_id: str, delegated: bool | None = None, application: bool | None = None
    ) -> None:
        """Grant or withdraw (admin) consent; None leaves that kind unchanged."""
        with self.lock:
            app = self.tenant.app_by(client_id)
            if app is None:
                raise KeyError(f"no app {client_id!r}")
            if delegated is not None:
                app.delegated_consent = delegated
            if application is not None:
                app.application_consent = application

    def reset_identity(self) -> None:
        """Forget sessions, codes and refresh tokens (the tenant itself is kept)."""
        with self.lock:
            self.identity.clear()
