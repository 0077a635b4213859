"""Reply tokens: ``RG-<instance>-<id>``, the id of a request in the mail it sends.

A token travels in the subject tag and the reference block of every request mail.
Parsing is strict: the exact prefix, an instance name, and an id of exactly
``ID_LENGTH`` Crockford base32 characters. Matching is case-insensitive, but no
character is ever substituted (Crockford's ``O -> 0`` and ``I/L -> 1`` decoding is
deliberately not applied), so a look-alike never matches a real request.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "RG"
ID_LENGTH = 10
# Crockford's base32 alphabet: digits and letters without I, L, O and U.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INSTANCE_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?"
INSTANCE_RE = re.compile(rf"^{_INSTANCE_PATTERN}$")

# A token inside free text: not glued to other word characters on either side.
_TOKEN_IN_TEXT = re.compile(
    rf"(?<![A-Za-z0-9-]){PREFIX}-({_INSTANCE_PATTERN})-([{ALPHABET}]{{{ID_LENGTH}}})(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_TOKEN_EXACT = re.compile(
    rf"^{PREFIX}-({_INSTANCE_PATTERN})-([{ALPHABET}]{{{ID_LENGTH}}})$", re.IGNORECASE
)


class InvalidToken(ValueError):
    """The text is not a well-formed reply token."""


class TokenOwner(StrEnum):
    """Whose token it is, seen from one instance."""

    OURS = "ours"
    FOREIGN = "foreign"


def validate_instance(name: str) -> str:
    """Return the instance name if it can be part of a token, else raise ``ValueError``."""
    if not INSTANCE_RE.fullmatch(name):
        raise ValueError(
            "an instance name is 1 to 32 lowercase letters, digits or inner hyphens "
            f"(for example 'prod' or 'dev-eu'), not {name!r}"
        )
    return name


@dataclass(frozen=True, slots=True)
class ReplyToken:
    """A parsed token. ``instance`` is lower case and ``request_id`` upper case."""

    instance: str
    request_id: str

    def __str__(self) -> str:
        return f"{PREFIX}-{self.instance}-{self.request_id}"

    def owner(self, instance: str) -> TokenOwner:
        return TokenOwner.OURS if self.instance == instance.lower() else TokenOwner.FOREIGN

    @classmethod
    def parse(cls, text: str) -> ReplyToken:
        match = _TOKEN_EXACT.fullmatch(text.strip())
        if match is None:
            raise InvalidToken(f"not a reply token: {text!r}")
        return cls(instance=match.group(1).lower(), request_id=match.group(2).upper())


def new_request_id() -> str:
    """A fresh random id of ``ID_LENGTH`` Crockford base32 characters (50 bits)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))


def new_token(instance: str) -> ReplyToken:
    return ReplyToken(instance=validate_instance(instance), request_id=new_request_id())


def find_tokens(text: str) -> list[ReplyToken]:
    """Every well-formed token in ``text``, in order of appearance, without repeats."""
    found: list[ReplyToken] = []
    for match in _TOKEN_IN_TEXT.finditer(text):
        token = ReplyToken(instance=match.group(1).lower(), request_id=match.group(2).upper())
        if token not in found:
            found.append(token)
    return found
