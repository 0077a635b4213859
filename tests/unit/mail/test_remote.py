"""Rebuilding a listed message (headers + body) as MIME gives the same understanding."""

from __future__ import annotations

from pathlib import Path

import pytest

from m365emu.mime import parse_mime
from replygate.mail.remote import rebuild_mime
from replygate.mail.understanding import understand

SAMPLES = sorted((Path(__file__).parents[2] / "data" / "replies").glob("*.eml"))


def listed(raw: bytes) -> tuple[tuple[tuple[str, str], ...], str | None, str | None]:
    """Headers and body as a Graph listing (the emulator's rendering) carries them."""
    fields = parse_mime(raw)
    headers = tuple((h["name"], h["value"]) for h in fields["internetMessageHeaders"])
    body = fields["body"]
    html = body["content"] if body["contentType"] == "html" else None
    return headers, html, None if html is not None else body["content"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_rebuilt_sample_is_understood_like_the_original(sample: Path) -> None:
    raw = sample.read_bytes()
    headers, html, text = listed(raw)
    rebuilt = rebuild_mime(headers, html=html, text=text)
    original = understand(raw)
    if rebuilt is None:  # reports: the caller fetches the raw MIME
        assert original.automatic
        return
    again = understand(rebuilt)
    assert (again.decision, again.automatic, again.token) == (
        original.decision,
        original.automatic,
        original.token,
    )


def test_nothing_to_rebuild_without_headers_or_body() -> None:
    assert rebuild_mime(None, html="<p>Approved</p>", text=None) is None
    assert rebuild_mime((("Subject", "x"),), html=None, text=None) is None


def test_a_header_value_cannot_inject_a_header() -> None:
    rebuilt = rebuild_mime(
        (("Subject", "hi\r\nAuto-Submitted: auto-replied"),), html=None, text="Approved"
    )
    assert rebuilt is not None
    assert b"\r\nAuto-Submitted" not in rebuilt
    assert not understand(rebuilt).automatic
