"""Broken, random and mutated mail never makes understand() raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.fuzzing import MIME_EXAMPLES

from replygate.mail.understanding import understand

SAMPLES = sorted((Path(__file__).parents[2] / "data" / "replies").glob("*.eml"))
SAMPLE_BYTES = [path.read_bytes() for path in SAMPLES]
FUZZ = settings(
    max_examples=MIME_EXAMPLES or 300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

HEADERISH = st.lists(
    st.sampled_from(
        [
            b"Content-Type: multipart/mixed; boundary=x\r\n",
            b"Content-Type: text/html; charset=x-unknown\r\n",
            b"Content-Transfer-Encoding: base64\r\n",
            b"Content-Transfer-Encoding: quoted-printable\r\n",
            b"Subject: =?utf-8?b?broken\r\n",
            b"From: <<@>>, ,\r\n",
            b"--x\r\n",
            b"\r\n",
            b"<blockquote><div id=divRplyFwdMsg>",
            b"=\r\n=ZZ",
            b"> Reference: RG-prod-7KQ2M9XW4D\r\n",
            b"\xff\xfe\x00",
        ]
    ),
    max_size=30,
).map(b"".join)


def _check(raw: bytes) -> None:
    result = understand(raw)
    assert isinstance(result.comment, str)
    assert isinstance(result.reasons, list)
    assert result.decision is None or result.comment is not None


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes(raw: bytes) -> None:
    _check(raw)


@FUZZ
@given(HEADERISH, st.binary(max_size=200))
def test_mime_like_fragments(head: bytes, tail: bytes) -> None:
    _check(head + tail)


@FUZZ
@given(
    st.sampled_from(SAMPLE_BYTES),
    st.lists(st.tuples(st.integers(0, 100_000), st.binary(max_size=40)), max_size=6),
    st.integers(0, 100_000),
)
def test_mutated_samples(sample: bytes, edits: list[tuple[int, bytes]], cut: int) -> None:
    data = bytearray(sample[: max(1, cut)] if cut % 3 == 0 else sample)
    for position, replacement in edits:
        index = position % (len(data) or 1)
        data[index : index + len(replacement)] = replacement
    _check(bytes(data))


# A quadratic regex or parser loop would hang on these; the timeout fails it instead.
@pytest.mark.timeout(120)
def test_hostile_large_bodies_are_read_in_bounded_time() -> None:
    bodies = [
        b"Content-Type: text/plain\r\n\r\n" + b"a:\r\n\r\n> q\r\nx\r\n" * 200_000,
        b"Content-Type: text/plain\r\n\r\nOn " + b"wrote " * 200_000 + b"\r\n",
        b"Content-Type: text/plain\r\n\r\nApproved" + b"\r\n" * 500_000 + b"Reference:",
        b"Content-Type: text/html\r\n\r\n" + b"<blockquote><div>" * 50_000 + b"Approved",
    ]
    for body in bodies:
        _check(b"Subject: Re: [RG-prod-7KQ2M9XW4D] x\r\n" + body)
