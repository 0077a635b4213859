"""RFC 3676 ``format=flowed`` text back to its paragraphs.

Thunderbird and Apple Mail wrap long lines with a trailing space; joined again, a hedge
wrapped onto the next line ("Approve " / "if the canary holds") stays on the first line,
where the grammar reads it.
"""

from __future__ import annotations

import re

_QUOTE_DEPTH = re.compile(r"^>+")


def unflow(text: str, *, delete_space: bool = False) -> str:
    """Join soft-broken lines of the same quote depth; the signature line stays as it is."""
    out: list[str] = []
    pending: str | None = None
    pending_depth = 0
    for raw_line in text.replace("\r\n", "\n").split("\n"):
        depth, content = _split_quote(raw_line)
        if pending is not None and depth == pending_depth:
            content = pending + content
        elif pending is not None:
            out.append(_with_quote(pending_depth, pending))
        pending = None
        if content.endswith(" ") and content != "-- ":
            pending = content[:-1] if delete_space else content
            pending_depth = depth
            continue
        out.append(_with_quote(depth, content))
    if pending is not None:
        out.append(_with_quote(pending_depth, pending))
    return "\n".join(out)


def _split_quote(line: str) -> tuple[int, str]:
    match = _QUOTE_DEPTH.match(line)
    depth = len(match.group(0)) if match else 0
    content = line[depth:]
    # Space-stuffing: one leading space was added to protect the line; remove it.
    return depth, content[1:] if content.startswith(" ") else content


def _with_quote(depth: int, content: str) -> str:
    return f"{'>' * depth} {content}" if depth else content
