from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replygate.domain.tokens import (
    ALPHABET,
    ID_LENGTH,
    InvalidToken,
    ReplyToken,
    TokenOwner,
    find_tokens,
    new_token,
    validate_instance,
)


def test_new_token_has_prefix_instance_and_id_of_fixed_length() -> None:
    token = new_token("prod")
    assert str(token).startswith("RG-prod-")
    assert len(token.request_id) == ID_LENGTH
    assert set(token.request_id) <= set(ALPHABET)


def test_parse_is_case_insensitive_and_canonicalises() -> None:
    token = ReplyToken.parse("rg-PROD-7kq2m9xw4d")
    assert str(token) == "RG-prod-7KQ2M9XW4D"


@pytest.mark.parametrize(
    "text",
    [
        "RG-prod-7KQ2M9XW4",  # one character short
        "RG-prod-7KQ2M9XW4DX",  # one character long
        "RG-prod-7KQ2M9XW4O",  # O is not Crockford; never read as 0
        "RG-prod-7KQ2M9XW4I",  # I is not Crockford; never read as 1
        "RG-prod-7KQ2M9XWLD",  # L likewise
        "RG-prod-7KQ2M9XWUD",  # U is excluded from the alphabet
        "RX-prod-7KQ2M9XW4D",
        "RG_prod_7KQ2M9XW4D",
        "RG--7KQ2M9XW4D",
        "RG-Prod Env-7KQ2M9XW4D",
    ],
)
def test_parse_rejects_look_alikes(text: str) -> None:
    with pytest.raises(InvalidToken):
        ReplyToken.parse(text)


def test_owner_distinguishes_instances() -> None:
    token = ReplyToken.parse("RG-dev-9TJX3BQ7MA")
    assert token.owner("dev") is TokenOwner.OURS
    assert token.owner("prod") is TokenOwner.FOREIGN


def test_find_tokens_in_subject_and_text() -> None:
    text = "RE: [RG-prod-7KQ2M9XW4D] Deploy\nReference: RG-dev-9TJX3BQ7MA\n"
    assert [str(t) for t in find_tokens(text)] == ["RG-prod-7KQ2M9XW4D", "RG-dev-9TJX3BQ7MA"]


def test_find_tokens_ignores_glued_or_overlong_ids() -> None:
    assert find_tokens("xRG-prod-7KQ2M9XW4D") == []
    assert find_tokens("RG-prod-7KQ2M9XW4DZ") == []
    assert find_tokens("RG-prod-7KQ2M9XW4O") == []


def test_instance_names_are_validated() -> None:
    assert validate_instance("dev-eu") == "dev-eu"
    for bad in ["", "Prod", "-dev", "dev-", "a b", "x" * 33]:
        with pytest.raises(ValueError, match="instance name"):
            validate_instance(bad)


@given(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True))
def test_round_trip_through_text(instance: str) -> None:
    token = new_token(instance)
    assert ReplyToken.parse(str(token).lower()) == token
    assert find_tokens(f"Subject: RE: [{token}] title") == [token]
