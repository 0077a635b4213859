"""Send a request's failed mail again, after an admin fixed the cause (console and API).

A permanent send error (Send As missing, a recipient refused) marks the outbox row
``failed`` and the sender never retries it by itself. Once the cause is fixed, every failed
row of the request goes back in the queue at once; the CLI's ``replygate outbox retry``
does the same for one row by its id.
"""

from __future__ import annotations

from replygate.errors import Conflict, NotFound
from replygate.services.ports import Clock, FailedMail, UnitOfWork


def resend_failed(uow: UnitOfWork, clock: Clock, request_id: str, *, by: str) -> int:
    """Queue every failed mail of an open request again; how many. Audited ``outbox.retry``."""
    with uow:
        request = uow.requests.get(request_id)
        if request is None:
            raise NotFound(f"no approval request {request_id}")
        if request.state.is_closed:
            raise Conflict(
                f"request {request.id} is already {request.state.value}: "
                "its mail is not sent again",
                fix="create a new request if it still needs a decision",
            )
        rows = uow.outbox.retry_failed_for(request.id, clock.now())
        if not rows:
            raise Conflict(f"request {request.id} has no mail that could not be sent")
        uow.audit.record(by, "outbox.retry", request.id, {"rows": rows, "count": len(rows)})
        uow.commit()
    return len(rows)


def failed_mail(uow: UnitOfWork, request_id: str) -> list[FailedMail]:
    """The request's mail that could not be sent (and was not sent again since), oldest first."""
    with uow:
        return uow.outbox.failed_for(request_id)
