"""CSRF protection: one random token per browser session, required on every unsafe request.

Forms carry it in the ``csrf_token`` field, scripts in the ``X-CSRF-Token`` header. The
check is an app-wide dependency, so a new route is protected without doing anything.
Requests authenticated by an ``Authorization`` header (API tokens) are not checked: a
browser never adds that header on its own. Routes that must accept cross-site posts
(the OAuth ``form_post`` callback, protected by its ``state``) use ``@csrf_exempt``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request

from replygate.errors import UserError

FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_EXEMPT = "_replygate_csrf_exempt"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

F = TypeVar("F", bound=Callable[..., object])


class CsrfRejected(UserError):
    """An unsafe request came without the session's CSRF token."""


def csrf_exempt(endpoint: F) -> F:
    setattr(endpoint, _EXEMPT, True)
    return endpoint


def csrf_token(request: Request) -> str:
    """This session's token, created on first use (templates put it in every form)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def rotate_csrf_token(request: Request) -> None:
    """A new token when the session changes hands (sign-in, sign-out)."""
    request.session["csrf"] = secrets.token_urlsafe(32)


async def verify_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS or getattr(request.scope.get("endpoint"), _EXEMPT, False):
        return
    if "authorization" in request.headers:
        return
    if request.url.path.startswith("/api/") and "uid" not in request.session:
        return  # no session, so nothing a forged request could ride on
    expected = request.session.get("csrf")
    given = request.headers.get(HEADER)
    if given is None and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        value = (await request.form()).get(FIELD)
        given = value if isinstance(value, str) else None
    if not (isinstance(expected, str) and given and hmac.compare_digest(expected, given)):
        raise CsrfRejected(
            "this form is out of date or did not come from replygate",
            fix="go back, reload the page and submit it again",
        )
