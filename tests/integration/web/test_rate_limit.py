"""Sign-in rate limiting: per username and per client address, with a clear message."""

from __future__ import annotations

from datetime import timedelta

import pytest

from replygate.bootstrap import Container
from replygate.web.ratelimit import LoginThrottle, TooManyAttempts
from tests.conftest import FixedClock
from tests.integration.web.conftest import TestClient, add_user, sign_in


def test_username_locked_after_five_failures_then_released(
    client: TestClient, container: Container, clock: FixedClock
) -> None:
    add_user(container, "alice")
    for _ in range(5):
        assert sign_in(client, "alice", "wrong password!").status_code == 401
    locked = sign_in(client, "alice")  # even the right password waits
    assert locked.status_code == 429
    assert "Too many failed sign-ins for this username" in locked.text
    assert "wait 15 minutes and try again" in locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    clock.advance(minutes=15, seconds=1)
    assert sign_in(client, "alice").status_code == 303


def test_success_clears_the_username_count(client: TestClient, container: Container) -> None:
    add_user(container, "alice")
    for _ in range(4):
        sign_in(client, "alice", "wrong password!")
    assert sign_in(client, "alice").status_code == 303
    client.cookies.clear()
    for _ in range(4):
        assert sign_in(client, "alice", "wrong password!").status_code == 401


def test_address_locked_after_twenty_failures_across_usernames(
    client: TestClient, container: Container
) -> None:
    add_user(container, "alice")
    for number in range(20):
        assert sign_in(client, f"user{number}", "wrong password!").status_code == 401
    answer = sign_in(client, "alice")
    assert answer.status_code == 429
    assert "from your network address" in answer.text


def test_throttle_window_slides(clock: FixedClock) -> None:
    throttle = LoginThrottle(clock, per_username=3, per_address=100, window=timedelta(minutes=10))
    for _ in range(3):  # at minutes 0, 1 and 2
        throttle.failed("Bob", "10.0.0.1")
        clock.advance(minutes=1)
    clock.advance(minutes=-1)
    with pytest.raises(TooManyAttempts) as raised:
        throttle.check("bob", "10.0.0.2")
    assert raised.value.retry_after == 8 * 60
    clock.advance(minutes=8)
    throttle.check("bob", "10.0.0.2")  # the oldest failure left the window
    throttle.failed("bob", "10.0.0.2")
    with pytest.raises(TooManyAttempts):
        throttle.check("bob", "10.0.0.3")


def test_throttle_memory_is_bounded(clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    from replygate.web import ratelimit

    monkeypatch.setattr(ratelimit, "MAX_KEYS", 10)
    throttle = LoginThrottle(clock)
    for number in range(50):
        clock.advance(seconds=1)
        throttle.failed(f"user{number}", f"10.0.0.{number}")
    assert len(throttle._users._failures) == 10
    assert "user49" in throttle._users._failures


def test_started_sign_ins_without_a_password_are_capped_per_address(clock: FixedClock) -> None:
    throttle = LoginThrottle(clock, starts_per_address=3, window=timedelta(minutes=10))
    for _ in range(3):
        throttle.start_without_password("10.0.0.1")
    with pytest.raises(TooManyAttempts, match="started") as raised:
        throttle.start_without_password("10.0.0.1")
    assert raised.value.retry_after == 10 * 60
    throttle.start_without_password("10.0.0.2")  # another address has its own count
    throttle.check("alice", "10.0.0.1")  # starts are not failed password sign-ins
    clock.advance(minutes=10)
    throttle.start_without_password("10.0.0.1")
