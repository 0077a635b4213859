"""Graph and identity failures as replygate errors, each with a plain-language fix.

Every class here also derives from the branch of `replygate.errors` that says who can act:
`ConfigurationError` (an admin must change something in Entra ID or Exchange),
`AuthorizationNeeded` (sign in again), `InvalidInput`/`NotFound` (this one message or item),
`TransportFailure` (try again later). `permanent` tells retry loops whether to stop.
"""

from __future__ import annotations

from replygate.errors import (
    AuthorizationNeeded,
    ConfigurationError,
    InvalidInput,
    NotFound,
    ReplygateError,
    SystemFailure,
    TransportFailure,
)


class GraphFailure(ReplygateError):
    """What Microsoft said, kept next to our message. The first base of the classes below."""

    permanent: bool = True

    def __init__(
        self,
        message: str,
        *,
        fix: str = "",
        status: int = 0,
        code: str = "",
        aadsts: int | None = None,
        description: str = "",
        request_id: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.status = status
        self.code = code  # Graph `error.code` or the OAuth `error`
        self.aadsts = aadsts  # AADSTS number of identity errors
        # The first line of Microsoft's text: the rest is trace ids and timestamps.
        self.description = description.strip().splitlines()[0] if description.strip() else ""
        self.request_id = request_id
        self.retry_after = retry_after


class GraphConfigurationError(GraphFailure, ConfigurationError):
    """Rights, consent, policies, app registration: an admin has to fix it."""


class CredentialRefused(GraphConfigurationError):
    """The identity platform refused the application itself (expired or wrong secret,
    unknown app or tenant): no mail can move until an admin fixes it, so mail waits."""


class GraphAuthorizationNeeded(GraphFailure, AuthorizationNeeded):
    """The account must be authorised again (refresh token gone, MFA, consent revoked)."""


class WrongAccount(GraphFailure, AuthorizationNeeded):
    """The token cache or the sign-in is for another account than the configured one."""


class GraphRejected(GraphFailure, InvalidInput):
    """This one request is wrong (recipients, size); retrying it cannot help."""


class GraphNotFound(GraphFailure, NotFound):
    """The item, folder or user does not exist (or no longer)."""


class FolderNotFound(GraphNotFound):
    """A folder path does not resolve; `existing` lists the folders where lookup stopped."""

    existing: tuple[str, ...] = ()


class GraphTransient(GraphFailure, TransportFailure):
    """Throttled, unavailable, timed out: try again after `retry_after` (or a backoff)."""

    permanent = False


class GraphRequestFailed(GraphFailure, TransportFailure):
    """An error we did not expect; kept permanent so no loop hammers Graph with it."""


class CursorExpired(GraphFailure, SystemFailure):
    """The delta cursor is no longer valid (410): start a full resync of the folder."""
