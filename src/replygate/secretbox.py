"""Secrets at rest: AES-256-GCM with a key from REPLYGATE_SECRET_KEY or DATA_DIR/secret.key.

Stored form: ``rg1:<key id>:<base64url(nonce || ciphertext)>``. The key id (first 8 hex
digits of the key's SHA-256) lets a wrong or lost key be named in a clear error instead
of failing as garbage. Each value is bound to what it is (``purpose``, the associated
data), so a ciphertext copied into another column does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from replygate.errors import ConfigurationError, SecretKeyError

FORMAT = "rg1"
KEY_BYTES = 32
NONCE_BYTES = 12


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key() -> str:
    """A fresh key in the text form REPLYGATE_SECRET_KEY and secret.key use."""
    return _b64encode(secrets.token_bytes(KEY_BYTES))


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class SecretBox:
    """Encrypts and decrypts small secrets with one key; ``source`` names where it came from."""

    key: bytes
    source: str

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise ConfigurationError(
                f"the secret key from {self.source} is {len(self.key)} bytes; 32 are needed",
                fix="generate one with `replygate secrets new-key`",
            )

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r}, source={self.source!r})"

    @property
    def key_id(self) -> str:
        return key_id(self.key)

    def encrypt(self, plaintext: str, purpose: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, plaintext.encode("utf-8"), purpose.encode())
        return f"{FORMAT}:{self.key_id}:{_b64encode(nonce + sealed)}"

    def decrypt(self, stored: str, purpose: str) -> str:
        try:
            fmt, stored_key_id, payload = stored.split(":", 2)
            raw = _b64decode(payload)
        except (ValueError, binascii.Error):
            raise SecretKeyError(
                f"a stored {purpose} is not in replygate's encrypted form",
                fix="re-enter that secret; the database value was changed outside replygate",
            ) from None
        if fmt != FORMAT:
            raise SecretKeyError(f"a stored {purpose} uses an unknown format {fmt!r}")
        if stored_key_id != self.key_id:
            raise SecretKeyError(
                f"a stored {purpose} was encrypted with secret key {stored_key_id}, "
                f"but the key in use ({self.source}) is {self.key_id}",
                fix="restore the original key (REPLYGATE_SECRET_KEY or DATA_DIR/secret.key), "
                "or re-enter the secrets and authorise the accounts again",
            )
        try:
            plain = AESGCM(self.key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode())
        except InvalidTag:
            raise SecretKeyError(
                f"a stored {purpose} does not decrypt with secret key {self.key_id}",
                fix="the value was damaged or moved; re-enter that secret",
            ) from None
        return plain.decode("utf-8")


def parse_key(text: str, source: str) -> bytes:
    try:
        key = _b64decode(text.strip())
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigurationError(
            f"the secret key in {source} is not 32 bytes in base64url",
            fix="generate one with `replygate secrets new-key`",
        )
    return key


def load_or_create(env_key: str | None, key_file: Path) -> SecretBox:
    """The key from the environment if set, else ``key_file``, created (0600) when missing."""
    if env_key:
        return SecretBox(parse_key(env_key, "REPLYGATE_SECRET_KEY"), "REPLYGATE_SECRET_KEY")
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(new_key() + "\n")
    return SecretBox(parse_key(key_file.read_text(), str(key_file)), str(key_file))


def write_key_file(key_file: Path, key_text: str) -> None:
    """Replace ``key_file`` atomically with a new key, mode 0600."""
    temporary = key_file.with_suffix(".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key_text + "\n")
    os.replace(temporary, key_file)
