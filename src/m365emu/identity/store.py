"""In-memory identity state: browser sessions, authorization codes and refresh tokens.

Refresh-token rotation: every refresh returns a new refresh token and the old one stays
valid until it expires or is revoked, as Microsoft documents ("the old one is not revoked
but should be discarded", https://learn.microsoft.com/entra/identity-platform/refresh-tokens).
Revocation (`revoke_user`) marks every refresh token of the user and ends their browser
sessions, like revokeSignInSessions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


def new_handle(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass(slots=True)
class Session:
    """A browser sign-in session (the emulator's ESTSAUTH cookie points at one)."""

    id: str
    user_id: str
    signed_in_at: datetime


@dataclass(slots=True)
class PendingAuthorization:
    """An authorize request waiting for the user to pick an account or consent."""

    ctx: str
    tenant_segment: str
    params: dict[str, str]
    created_at: datetime
    user_id: str | None = None  # set once an account is chosen (consent step)


@dataclass(slots=True)
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    user_id: str
    scopes: tuple[str, ...]  # as requested at /authorize (original spelling)
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    issued_at: datetime
    auth_time: datetime
    redeemed: bool = False


@dataclass(slots=True)
class RefreshTokenRecord:
    token: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    issued_at: datetime
    auth_time: datetime  # when the user signed in (start of the token family)
    revoked: bool = False


@dataclass(slots=True)
class IdentitySettings:
    """Lifetimes; tests may change them at run time."""

    access_token_lifetime: timedelta = timedelta(hours=1)
    id_token_lifetime: timedelta = timedelta(hours=1)
    code_lifetime: timedelta = timedelta(minutes=10)
    # A refresh token unused for this long fails with AADSTS700082 (Microsoft: 90 days).
    refresh_token_inactivity: timedelta = timedelta(days=90)
    # Optional absolute limit on a token family since sign-in: AADSTS70008 when exceeded.
    refresh_token_max_age: timedelta | None = None
    # Clock skew allowed on client assertions and access tokens.
    clock_skew: timedelta = timedelta(minutes=5)


@dataclass(slots=True)
class IdentityStore:
    settings: IdentitySettings = field(default_factory=IdentitySettings)
    sessions: dict[str, Session] = field(default_factory=dict)
    pending: dict[str, PendingAuthorization] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshTokenRecord] = field(default_factory=dict)
    # Access tokens whose signature has been checked -> their claims (see tokens._decode).
    verified_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    def revoke_user(self, user_id: str) -> int:
        """Revoke every refresh token and browser session of a user; returns tokens revoked."""
        count = 0
        for record in self.refresh_tokens.values():
            if record.user_id == user_id and not record.revoked:
                record.revoked = True
                count += 1
        for sid in [s.id for s in self.sessions.values() if s.user_id == user_id]:
            del self.sessions[sid]
        return count

    def prune(self, now: datetime) -> None:
        """Drop expired codes and stale pending requests (keeps memory flat in long runs)."""
        for code in [c.code for c in self.codes.values() if now - c.issued_at > timedelta(hours=1)]:
            del self.codes[code]
        stale = [p.ctx for p in self.pending.values() if now - p.created_at > timedelta(hours=1)]
        for ctx in stale:
            del self.pending[ctx]

    def clear(self) -> None:
        self.sessions.clear()
        self.pending.clear()
        self.codes.clear()
        self.refresh_tokens.clear()
        self.verified_tokens.clear()
