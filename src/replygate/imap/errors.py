"""IMAP failures as replygate errors, each with a plain-language fix.

`CursorExpired` keeps that exact class name: the reader resyncs the folder when it sees it
(a changed UIDVALIDITY makes every stored UID meaningless; the ledger dedupes re-reads).
"""

from __future__ import annotations

from replygate.errors import ConfigurationError, NotFound, SystemFailure, TransportFailure


class ImapFailure(TransportFailure):
    """The server or the connection failed: try again later."""


class ImapConfigurationError(ConfigurationError):
    """Login refused, TLS not offered or not trusted, a needed capability missing."""


class FolderNotFound(NotFound):
    """A folder path does not resolve; `existing` lists the folders the server has."""

    def __init__(self, message: str, *, fix: str = "", existing: tuple[str, ...] = ()) -> None:
        super().__init__(message, fix=fix)
        self.existing = existing


class MessageGone(NotFound):
    """The message is no longer in its folder (moved, expunged, or UIDVALIDITY changed)."""


class CursorExpired(SystemFailure):
    """The folder's UIDVALIDITY changed: stored UIDs name nothing; read the folder again."""


LOGIN_FIX = (
    "Check the IMAP username and password in Email Settings. Microsoft 365 and Gmail "
    "refuse plain passwords for most accounts: use OAuth, or an app password."
)
OAUTH_FIX = (
    "Authorise the OAuth application again; the token needs IMAP access (Microsoft 365: "
    "https://outlook.office.com/IMAP.AccessAsUser.All; Gmail: https://mail.google.com/)."
)
