"""IMAP's modified UTF-7 for folder names (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import base64
import binascii


def encode(name: str) -> str:
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = base64.b64encode("".join(run).encode("utf-16-be")).decode()
            out.append("&" + raw.rstrip("=").replace("/", ",") + "-")
            run.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """The readable name; a malformed one comes back unchanged (it is still a valid id)."""
    out: list[str] = []
    i = 0
    while i < len(name):
        if name[i] != "&":
            out.append(name[i])
            i += 1
            continue
        end = name.find("-", i)
        if end == -1:
            return name
        chunk = name[i + 1 : end].replace(",", "/")
        if not chunk:
            out.append("&")
        else:
            try:
                raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4), validate=True)
                out.append(raw.decode("utf-16-be"))
            except (binascii.Error, UnicodeDecodeError):
                return name
        i = end + 1
    return "".join(out)
