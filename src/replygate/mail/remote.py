"""A message as a reader listed it (headers and body) rebuilt as MIME, for ``understand()``.

Graph's delta pages can carry `internetMessageHeaders` and the body; rebuilding the message
from them spares one `$value` request per message and keeps ``understand()`` the one entry
point for parsing. What the listing cannot carry (the parts of a delivery or read report,
attachments) is not invented: for reports ``rebuild_mime`` returns None and the caller
fetches the raw MIME instead. The raw kept for audit is then this rebuilt form: the
original headers and the body as the mailbox rendered it.
"""

from __future__ import annotations

from collections.abc import Sequence

# Headers that describe the original MIME structure, which the rebuilt body replaces.
_STRUCTURE = frozenset(
    {"content-type", "content-transfer-encoding", "mime-version", "content-disposition"}
)
# Bodies of these kinds hold machine-readable parts (bounces, receipts) the listing drops.
_NEEDS_RAW = ("multipart/report", "message/")


def _content_type(headers: Sequence[tuple[str, str]]) -> str:
    for name, value in headers:
        if name.strip().lower() == "content-type":
            return value.strip().lower()
    return ""


def _clean(value: str) -> str:
    # A header value must not smuggle a line break into the rebuilt header block.
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def needs_raw(
    headers: Sequence[tuple[str, str]] | None, *, html: str | None, text: str | None
) -> bool:
    """True when a listed message cannot be rebuilt: its raw MIME has to be fetched."""
    if headers is None or (html is None and text is None):
        return True
    return _content_type(headers).startswith(_NEEDS_RAW)


def rebuild_mime(
    headers: Sequence[tuple[str, str]] | None, *, html: str | None, text: str | None
) -> bytes | None:
    """The message as RFC 5322 bytes from its listed headers and body (HTML or text), or
    None when the listing lacks what parsing needs (no headers, no body, a report's parts)."""
    if needs_raw(headers, html=html, text=text):
        return None
    assert headers is not None  # needs_raw is True without them
    lines = [
        f"{name.strip()}: {_clean(value)}"
        for name, value in headers
        if name.strip() and name.strip().lower() not in _STRUCTURE
    ]
    subtype = "html" if html is not None else "plain"
    body = html if html is not None else text or ""
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit",
    ]
    head = "\r\n".join(lines).encode("utf-8", errors="replace")
    lines_of_body = body.replace("\r\n", "\n").replace("\n", "\r\n")
    return head + b"\r\n\r\n" + lines_of_body.encode("utf-8", errors="replace")
