"""Durations as people type them: ``45s``, ``30m``, ``4h``, ``90d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Raise ``ValueError`` with a plain message when ``text`` is not a duration."""
    value = text.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    parts = _PART.findall(value)
    if not parts or _PART.sub("", value).strip():
        raise ValueError(f"{text!r} is not a duration: use e.g. 45s, 30m, 4h, 90d or 1h30m")
    return timedelta(seconds=sum(int(n) * _UNITS[u.lower()] for n, u in parts))
