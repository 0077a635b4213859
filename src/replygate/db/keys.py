"""The secret key's check value, and re-encryption of every stored secret under a new key."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from replygate.db.repositories import SqlInstanceMeta
from replygate.db.tables import ENCRYPTED_COLUMNS
from replygate.errors import SecretKeyError
from replygate.secretbox import SecretBox

CHECK_KEY = "secret_key_check"
CHECK_PURPOSE = "secret key check"
CHECK_TEXT = "replygate"


def verify_or_record(session: Session, box: SecretBox) -> None:
    """Fail clearly at start if the key is not the one the database was written with."""
    meta = SqlInstanceMeta(session)
    stored = meta.get(CHECK_KEY)
    if stored is None:
        meta.put(CHECK_KEY, box.encrypt(CHECK_TEXT, CHECK_PURPOSE))
        return
    if box.decrypt(stored, CHECK_PURPOSE) != CHECK_TEXT:
        raise SecretKeyError("the secret key check value is wrong")


def reencrypt_all(session: Session, old: SecretBox, new: SecretBox) -> int:
    """Re-encrypt every encrypted column from ``old`` to ``new``; return how many values."""
    count = 0
    for model, column, purpose in ENCRYPTED_COLUMNS:
        attribute = getattr(model, column)
        for row in session.scalars(select(model).where(attribute.is_not(None))):
            plain = old.decrypt(getattr(row, column), purpose)
            setattr(row, column, new.encrypt(plain, purpose))
            count += 1
    SqlInstanceMeta(session).put(CHECK_KEY, new.encrypt(CHECK_TEXT, CHECK_PURPOSE))
    session.flush()
    return count
