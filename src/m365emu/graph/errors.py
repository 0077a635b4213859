"""Graph's error envelope (https://learn.microsoft.com/graph/errors).

`{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}`
with the same request id in the `request-id` response header.
"""

from __future__ import annotations

from typing import Any

ACCESS_DENIED = "Access is denied. Check credentials and try again."
ITEM_NOT_FOUND = "The specified object was not found in the store."
RAOP_DENIED = (
    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy "
    "settings."
)
SEND_AS_DENIED = (
    "The user account which was used to submit this request does not have the right to send "
    "mail on behalf of the specified sending account., Cannot submit message."
)
MAILBOX_NOT_ENABLED = "The mailbox is either inactive, soft-deleted, or is hosted on-premise."


class GraphError(Exception):
    """Raised by handlers; the dispatcher turns it into the envelope."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def envelope(
    code: str, message: str, request_id: str, client_request_id: str, date: str
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": date,
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }


def not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", ITEM_NOT_FOUND)


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)
