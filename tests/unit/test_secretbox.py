from __future__ import annotations

import stat
from pathlib import Path

import pytest

from replygate.errors import ConfigurationError, SecretKeyError
from replygate.secretbox import SecretBox, load_or_create, new_key, parse_key


def box(source: str = "test") -> SecretBox:
    return SecretBox(parse_key(new_key(), source), source)


def test_round_trip_and_no_plaintext_in_ciphertext() -> None:
    secrets = box()
    stored = secrets.encrypt("client-secret-value", "client secret")
    assert "client-secret-value" not in stored
    assert stored.startswith(f"rg1:{secrets.key_id}:")
    assert secrets.decrypt(stored, "client secret") == "client-secret-value"


def test_same_plaintext_encrypts_differently() -> None:
    secrets = box()
    assert secrets.encrypt("x", "p") != secrets.encrypt("x", "p")


def test_wrong_key_is_named_not_garbage() -> None:
    stored = box().encrypt("value", "token cache")
    other = box("REPLYGATE_SECRET_KEY")
    with pytest.raises(
        SecretKeyError, match=r"encrypted with secret key .* key in use \(REPLYGATE_SECRET_KEY\)"
    ):
        other.decrypt(stored, "token cache")


def test_value_bound_to_its_purpose() -> None:
    secrets = box()
    stored = secrets.encrypt("value", "client secret")
    with pytest.raises(SecretKeyError, match="does not decrypt"):
        secrets.decrypt(stored, "token cache")


def test_damaged_values_give_clear_errors() -> None:
    secrets = box()
    with pytest.raises(SecretKeyError, match="not in replygate's encrypted form"):
        secrets.decrypt("plain text", "client secret")
    stored = secrets.encrypt("value", "p")
    with pytest.raises(SecretKeyError, match="does not decrypt"):
        secrets.decrypt(stored[:-4] + "AAAA", "p")


def test_key_file_created_once_with_mode_0600(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "secret.key"
    first = load_or_create(None, key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create(None, key_file).key == first.key


def test_environment_key_wins_and_is_validated(tmp_path: Path) -> None:
    text = new_key()
    assert load_or_create(text, tmp_path / "k").source == "REPLYGATE_SECRET_KEY"
    assert not (tmp_path / "k").exists()
    with pytest.raises(ConfigurationError, match="REPLYGATE_SECRET_KEY is not 32 bytes"):
        load_or_create("too-short", tmp_path / "k")


def test_repr_hides_the_key() -> None:
    secrets = box()
    assert secrets.key.hex() not in repr(secrets)
