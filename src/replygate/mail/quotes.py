"""The approver's new text: a reply without quotes, reply headers, signatures, footers,
disclaimers and the request's own text (REPLY-GRAMMAR.md section 2).

One public function, ``new_text``. No quote library is used: the grammar is precise and
the hand-written rules below are measured against the sample replies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_I = re.IGNORECASE

# --- reply headers -------------------------------------------------------------------

# "On <date>, <name> wrote:" and its translations; joined over up to three wrapped lines.
# Attributions are short; longer lines are not tried (and the regex stays linear).
_MAX_ATTRIBUTION = 400
_ATTRIBUTION = re.compile(
    r"^(?:on|am|le|el|op|den|il|em|w dniu|dne)\b.*\b(?:wrote|schrieb|a\s+écrit|escribió|"
    r"schreef|skrev|ha\s+scritto|escreveu|napisał|napsal)\b.*:$",
    _I,
)
# Lotus Notes: -----"Name" <addr> wrote: -----
_NOTES_ATTRIBUTION = re.compile(r"^-{2,}.*\bwrote:\s*-{2,}$", _I)
_SEPARATOR = re.compile(
    r"^[\s*_=-]*(?:original\s*message|forwarded\s*message|ursprüngliche\s*nachricht|"
    r"weitergeleitete\s*nachricht|message\s*d['’]origine|message\s*transféré|"
    r"mensaje\s*original|mensaje\s*reenviado|oorspronkelijk\s*bericht|"
    r"doorgestuurd\s*bericht|originalmeddelande|messaggio\s*originale)[\s*_=-]*$",
    _I,
)
_BEGIN_FORWARD = re.compile(r"^begin forwarded message:$", _I)
_RULE = re.compile(r"^[_-]{8,}$")
_HEADER_NAMES = (
    "from|sent|sent by|date|to|cc|subject|von|gesendet|datum|an|betreff|de|envoyé|à|objet|"
    "enviado|para|asunto|fecha|van|verzonden|aan|onderwerp|från|skickat|till|ämne|ärende|"
    "da|inviato|a|oggetto|data"
)
_HEADER_LINE = re.compile(rf"^\*?(?:{_HEADER_NAMES})\s*\*?\s*:\s*\*?(?:\s|$)", _I)

# --- signatures, footers, disclaimers ------------------------------------------------

_SIGNATURE = re.compile(r"^--\s?$")
_FOOTER = re.compile(
    r"^(?:sent from (?:my |yahoo mail|mail for|outlook)|sent with |sent via |"
    r"get outlook for |von meinem .{1,40} gesendet|gesendet von (?:meinem|mobil)|"
    r"envoyé de mon |envoyé depuis |enviado desde mi |enviado desde |enviado do meu |"
    r"verzonden (?:vanaf|met) mijn |verstuurd vanaf mijn |skickat från min |"
    r"inviato da |inviato dal mio )",
    _I,
)
_DISCLAIMER = re.compile(
    r"^(?:\**\s*)?(?:confidentiality notice|confidential(?:ity)?\s*:|disclaimer\s*:|"
    r"this e-?mail (?:and|message|is|may|contains)|this message (?:and|is|may|contains)|"
    r"the information (?:contained )?in this (?:e-?mail|message)|"
    r"diese e-?mail (?:enthält|ist|kann)|ce (?:message|courriel|e-?mail) (?:et|est|peut)|"
    r"este (?:mensaje|correo) (?:y|es|puede|contiene)|dit (?:e-?mail)?bericht)",
    _I,
)

# --- what the service itself wrote in the request -------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceMarkers:
    """How to recognise the request's own text when a client did not quote it.

    A line containing one of ``block_starts`` opens the request's text, which ends with a
    line matching ``block_end`` (or at the end); lines matching ``lines`` are dropped
    anywhere. ``title`` is the request's title: dropped when it heads that block.
    """

    block_starts: tuple[str, ...] = (
        "asks for your approval",
        "reply with approve or reject",
        "please keep this line and everything below it",
        "we could not read a decision in your reply",
    )
    block_end: re.Pattern[str] = re.compile(r"^reference:\s*rg-", _I)
    lines: tuple[re.Pattern[str], ...] = (
        re.compile(r"^(?:approve|reject)\s*:?\s*<?mailto:", _I),
        re.compile(r"^(?:approve|reject)\s*<mailto:", _I),
        re.compile(r"^reference:\s*rg-", _I),
        re.compile(r"please keep this line and everything below it", _I),
        re.compile(r"^view in replygate:\s*\S+$", _I),
    )
    title: str | None = None


DEFAULT_MARKERS = ServiceMarkers()


def new_text(text: str, *, service_markers: ServiceMarkers = DEFAULT_MARKERS) -> str:
    """The approver's own text in ``text``, top- or bottom-posted; may be empty."""
    lines = _drop_service_text(_normalise(text), service_markers)
    kept = _strip_quotes(lines)
    kept = _cut_signature_and_disclaimer(kept)
    kept = [line for line in kept if not _is_footer(line)]
    return _tidy(kept)


def _normalise(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[\u200b\u200c\u200d\u2060\ufeff]", "", text).replace("\u00a0", " ")
    return [line.rstrip() for line in text.split("\n")]


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


# --- service text ---------------------------------------------------------------------


def _drop_service_text(lines: list[str], markers: ServiceMarkers) -> list[str]:
    kept: list[str] = []
    inside = False
    for line in lines:
        if _is_quoted(line):
            kept.append(line)  # quoted lines go with the rest of the quote
            continue
        bare = line.strip()
        lowered = bare.lower()
        if not inside and any(start in lowered for start in markers.block_starts):
            inside = True
            _drop_title(kept, markers.title)
        if inside:
            if markers.block_end.match(bare):
                inside = False
            continue
        if not any(pattern.search(bare) for pattern in markers.lines):
            kept.append(line)
    return kept


def _drop_title(kept: list[str], title: str | None) -> None:
    """Drop the request's title line just above its text, if a client left it unquoted."""
    if not title:
        return
    index = len(kept) - 1
    while index >= 0 and not kept[index].strip():
        index -= 1
    if index >= 0 and kept[index].strip().lower() == title.strip().lower():
        del kept[index:]


# --- quotes and reply headers ------------------------------------------------------------


def _strip_quotes(lines: list[str]) -> list[str]:
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _is_quoted(line):
            index += 1
            continue
        attribution_end = _attribution_end(lines, index)
        if attribution_end is not None:
            if not _quote_follows(lines, attribution_end + 1):
                break  # the quoted original follows unmarked: everything from here is quote
            index = attribution_end + 1
            continue
        if _starts_quoted_original(lines, index):
            break
        kept.append(line)
        index += 1
    return kept


def _attribution_end(lines: list[str], start: int) -> int | None:
    """Index of the last line of an attribution starting at ``start``, if one does."""
    stripped = lines[start].strip()
    if not stripped:
        return None
    if len(stripped) <= _MAX_ATTRIBUTION and _NOTES_ATTRIBUTION.match(stripped):
        return start
    joined = ""
    for end in range(start, min(start + 3, len(lines))):
        part = lines[end].strip()
        if not part or _is_quoted(lines[end]):
            break
        joined = f"{joined} {part}".strip()
        if len(joined) > _MAX_ATTRIBUTION:
            break
        if joined.endswith(":") and _ATTRIBUTION.match(joined):
            return end
    # The general rule: a line ending in ':' directly followed by a '>'-quoted block.
    if stripped.endswith(":") and _quote_follows(lines, start + 1, directly=True):
        return start
    return None


def _quote_follows(lines: list[str], start: int, *, directly: bool = False) -> bool:
    for index in range(start, len(lines)):
        if not lines[index].strip() and not directly:
            continue
        return _is_quoted(lines[index])
    return False


def _starts_quoted_original(lines: list[str], index: int) -> bool:
    stripped = lines[index].strip()
    if _SEPARATOR.match(stripped) or _BEGIN_FORWARD.match(stripped):
        return True
    if _RULE.match(stripped):
        following = [line for line in lines[index + 1 : index + 3] if line.strip()]
        return bool(following) and _is_header_line(following[0])
    return _is_header_line(stripped) and (
        index + 1 < len(lines) and _is_header_line(lines[index + 1])
    )


def _is_header_line(line: str) -> bool:
    return bool(_HEADER_LINE.match(line.strip()))


# --- signatures, disclaimers, footers -------------------------------------------------------


def _cut_signature_and_disclaimer(lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        if _SIGNATURE.match(line):
            return lines[:index]
        starts_paragraph = index == 0 or not lines[index - 1].strip()
        if starts_paragraph and _DISCLAIMER.match(line.strip()):
            return lines[:index]
    return lines


def _is_footer(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) <= 120 and bool(_FOOTER.match(stripped))


def _tidy(lines: list[str]) -> str:
    text = "\n".join(lines).strip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()
