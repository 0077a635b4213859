"""The one error tree of replygate.

    ReplygateError                      root: every error we raise on purpose
    ├── UserError                       shown as it is; the user or operator can fix it
    │   ├── InvalidInput                a value given to us is wrong (HTTP 422, exit 4)
    │   ├── NotFound                    the thing named does not exist (HTTP 404)
    │   ├── Conflict                    the state does not allow it now (HTTP 409)
    │   ├── ConfigurationError          a setting is wrong or missing (start-up, config test)
    │   │   └── SecretKeyError          the secret key cannot decrypt what is stored
    │   └── AuthorizationNeeded         an OAuth account must be (re-)authorised by an admin
    └── SystemFailure                   logged with context; retried or reported as a fault
        ├── StorageFailure              the database failed
        └── TransportFailure            Graph, SMTP or IMAP failed in a way we did not expect

Every error carries a plain-language ``message`` and, where there is one, a ``fix``: what
to do about it. Entry points map the branches: the web layer to HTTP statuses and
problem details, the CLI to exit codes. Nothing below the entry points prints.
"""

from __future__ import annotations


class ReplygateError(Exception):
    """Root of every error replygate raises on purpose."""

    def __init__(self, message: str, *, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} Fix: {self.fix}" if self.fix else self.message


class UserError(ReplygateError):
    """Caused by what a user or operator did or configured; shown as it is."""


class InvalidInput(UserError):
    """A value given to us is wrong; the message names it and says what is expected."""


class NotFound(UserError):
    """The thing named does not exist."""


class Conflict(UserError):
    """The current state does not allow the operation."""


class ConfigurationError(UserError):
    """A setting is wrong or missing."""


class SecretKeyError(ConfigurationError):
    """The secret key in use cannot decrypt what the database holds."""


class AuthorizationNeeded(UserError):
    """An OAuth application's account must be authorised (again) by an admin."""


class SystemFailure(ReplygateError):
    """Something outside the user's control failed; logged with context."""


class StorageFailure(SystemFailure):
    """The database failed."""


class TransportFailure(SystemFailure):
    """A mail transport (Graph, SMTP, IMAP) failed unexpectedly."""
