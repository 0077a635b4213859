"""Reply text to a verdict and a comment: REPLY-GRAMMAR.md sections 3 and 4, exactly.

The grammar is strict on purpose: whatever is not clearly a decision is no decision, so
every doubtful case (a question, a condition, words of both kinds, an unknown word)
returns ``verdict=None`` with a ``reason`` that says which rule decided.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from replygate.domain.model import Verdict

APPROVE_WORDS = frozenset(
    [
        "approve",
        "approved",
        "approving",
        "yes",
        "genehmigt",
        "genehmigen",
        "approuvé",
        "approuve",
        "approuver",
        "aprobado",
        "apruebo",
        "aprobar",
        "goedgekeurd",
        "goedkeuren",
    ]
)
REJECT_WORDS = frozenset(
    [
        "reject",
        "rejected",
        "rejecting",
        "deny",
        "denied",
        "decline",
        "declined",
        "no",
        "abgelehnt",
        "ablehnen",
        "rejeté",
        "rejete",
        "refusé",
        "refuse",
        "refuser",
        "rechazado",
        "rechazo",
        "rechazar",
        "afgewezen",
        "afwijzen",
    ]
)
# Negations that turn an approve word at the start of the line into a reject.
_NEGATION = re.compile(
    r"(?:do\s+not|don['’]t|dont|not|ne\s+pas|pas|nicht|no|niet)\s+([^\W_]+)", re.IGNORECASE
)
# Words that put a condition on the decision in the same clause: "approve if ...".
_CONDITIONS = re.compile(
    r"\b(?:if|unless|once|after|provided|providing|assuming|pending|when|whenever|until|"
    r"till|but|maybe|perhaps|possibly|probably|only|conditionally|tentatively|subject\s+to|"
    r"as\s+(?:long|soon)\s+as|wenn|falls|sofern|sobald|nachdem|aber|vielleicht|eventuell|"
    r"nur|erst|vorausgesetzt|bis|si|quand|lorsque|après|mais|peut-être|seulement|"
    r"uniquement|une\s+fois|dès\s+que|sauf|sous\s+réserve|cuando|después|pero|quizás|quizá|"
    r"tal\s+vez|solo|sólo|una\s+vez|siempre\s+que|hasta|salvo|als|indien|zodra|nadat|maar|"
    r"misschien|alleen|mits|tenzij|wanneer)\b",
    re.IGNORECASE,
)
# A sentence ends at . or ! followed by a space or the end ("2.3.1" does not end one); a
# semicolon does not end the decision's clause ("Approved; after the freeze" hedges).
_SENTENCE_END = re.compile(r"[.!](?=\s|$)")
# Separators that introduce the comment: "Approved – text", "Rejected: text".
_SEPARATOR = re.compile(r"\s[-–—]\s|:|\s[-–—]$")
_COMMENT_SEPARATORS = ":-–—,.;!"
_MIRROR = {"[": "]", "(": ")", "{": "}", "<": ">", "“": "”", "‘": "’", "«": "»", "„": "“"}
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|antw|antwort|rv|tr|wg|fw|fwd|vs|vl|ref)\s*(?:\[\d+\]|\(\d+\))?\s*:"
    r"|\[\s*(?:re|aw|sv|antw|rv|tr|wg|fw|fwd)\s*:?\s*\])\s*",
    re.IGNORECASE,
)
_BRACKET_TAG = re.compile(r"^\s*\[[^\]]*\]\s*")
# Explicit negations; "no" negates only an approve word ("no aprobado"), never "no".
_NEGATORS = frozenset({"not", "don't", "don’t", "dont", "nicht", "pas", "niet"})


@dataclass(frozen=True, slots=True)
class ParsedDecision:
    verdict: Verdict | None
    comment: str
    reason: str
    from_subject: bool = False


@dataclass(frozen=True, slots=True)
class _Word:
    """The decision found at the start of a line: its verdict and where it ends."""

    verdict: Verdict | None
    end: int
    reason: str


def parse_decision(new_text: str, subject: str) -> ParsedDecision:
    """The decision in ``new_text`` (already stripped of quotes), else in ``subject``."""
    lines = _nfc(new_text).splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return _parse_subject(subject)
    line = lines[first].strip()
    verdict, reason, rest = _parse_line(line)
    if verdict is None:
        return ParsedDecision(None, "", reason)
    comment = "\n".join([rest, *lines[first + 1 :]]).strip()
    return ParsedDecision(verdict, comment, reason)


def strip_reply_prefixes(subject: str) -> str:
    """``RE: AW: [Fwd:] text`` to ``text``."""
    text = _nfc(subject).strip()
    while True:
        match = _REPLY_PREFIX.match(text)
        if match is None or not match.group(0):
            return text
        text = text[match.end() :]


def _parse_subject(subject: str) -> ParsedDecision:
    text = strip_reply_prefixes(subject)
    tag = _BRACKET_TAG.match(text)
    if tag:
        # "[RG-...] APPROVE": the word may follow the tag only if nothing else does,
        # otherwise a title that starts with "Approve ..." would decide.
        text = strip_reply_prefixes(text[tag.end() :])
        verdict, reason, rest = _parse_line(text)
        if verdict is not None and rest:
            return ParsedDecision(None, "", "subject_title", from_subject=True)
        return ParsedDecision(verdict, "", reason if text else "empty", from_subject=True)
    # The request's tag and title follow the word in a pre-filled subject; they are no
    # part of the decision ("APPROVE [RG-...] Deploy if green").
    words = text.split("[", 1)[0]
    verdict, reason, _ = _parse_line(words)
    return ParsedDecision(verdict, "", reason if words.strip() else "empty", from_subject=True)


def _parse_line(line: str) -> tuple[Verdict | None, str, str]:
    """(verdict, reason, comment part of the line) for one first line."""
    # Invisible format characters (zero-width spaces, marks) are no part of any word.
    line = "".join(char for char in line if unicodedata.category(char) != "Cf")
    opening, body = _split_opening(line)
    word = _decision_word(body)
    if word.verdict is None:
        return None, word.reason, ""
    rest = body[word.end :]
    if _is_question(rest):
        return None, "question", ""
    if _is_conditional(rest):
        return None, "condition", ""
    if _conflicts(rest, word.verdict):
        return None, "conflict", ""
    return word.verdict, word.reason, _comment_start(rest, opening)


def _split_opening(line: str) -> tuple[str, str]:
    """Leading whitespace and punctuation (``*``, ``-``, ``"``, ``[``...) and the rest."""
    index = 0
    while index < len(line) and _is_punctuation_or_space(line[index]):
        index += 1
    return line[:index], line[index:]


def _is_punctuation_or_space(char: str) -> bool:
    category = unicodedata.category(char)
    return char.isspace() or category[0] in "PZ" or category in ("Sm", "Sk")


def _decision_word(body: str) -> _Word:
    negated = _NEGATION.match(body)
    if negated and _is_whole(body, negated.end()):
        negated_word = negated.group(1).casefold()
        if negated_word in APPROVE_WORDS:
            return _Word(Verdict.REJECT, negated.end(), "negation")
        if negated_word in REJECT_WORDS:
            return _Word(None, 0, "negated_reject")
    match = re.match(r"[^\W_]+", body)
    if match is None:
        return _Word(None, 0, "no_decision_word")
    word = match.group(0).casefold()
    if word not in APPROVE_WORDS and word not in REJECT_WORDS:
        return _Word(None, 0, "no_decision_word")
    if not _is_whole(body, match.end()):
        return _Word(None, 0, "not_whole_word")
    if word in APPROVE_WORDS:
        return _Word(Verdict.APPROVE, match.end(), "approve_word")
    return _Word(Verdict.REJECT, match.end(), "reject_word")


def _is_whole(text: str, end: int) -> bool:
    """The word ending at ``end`` is followed by the end, whitespace or punctuation.

    A hyphen, underscore or apostrophe glued to more letters ("approved-ish") continues
    the word instead.
    """
    if end >= len(text):
        return True
    following = text[end]
    if following in "-_'’" and end + 1 < len(text) and text[end + 1].isalnum():
        return False
    return _is_punctuation_or_space(following)


def _is_question(rest: str) -> bool:
    clause = _SENTENCE_END.split(rest, maxsplit=1)[0]
    return "?" in clause


def _is_conditional(rest: str) -> bool:
    """A condition word in the decision's clause, or right after its separator."""
    sentence = _SENTENCE_END.split(rest, maxsplit=1)[0]
    separated = _SEPARATOR.search(sentence)
    clause = sentence[: separated.start()] if separated else sentence
    if _CONDITIONS.search(clause):
        return True
    if separated:
        after = sentence[separated.end() :].lstrip(" ,*\"'")
        return bool(_CONDITIONS.match(after))
    return False


def _conflicts(rest: str, verdict: Verdict) -> bool:
    """Any word of the other kind in the rest of the line, negations taken into account."""
    words = re.findall(r"\w+(?:['’]t)?", rest.casefold())
    senses = (_sense(words, index) for index in range(len(words)))
    return any(sense is not None and sense is not verdict for sense in senses)


def _sense(words: list[str], index: int) -> Verdict | None:
    """What the word at ``index`` says: "not approved" rejects, "not rejected" approves."""
    word = words[index]
    previous = words[index - 1] if index else ""
    if word in APPROVE_WORDS:
        negated = previous in _NEGATORS or previous == "no"
        return Verdict.REJECT if negated else Verdict.APPROVE
    if word in REJECT_WORDS:
        if previous in _NEGATORS:
            return Verdict.APPROVE
        following = words[index + 1] if index + 1 < len(words) else ""
        if word == "no" and following in APPROVE_WORDS:
            return None  # "no aprobado": counted with the word it negates
        return Verdict.REJECT
    return None


def _comment_start(rest: str, opening: str) -> str:
    """The rest of the first line without separators and the closing half of emphasis."""
    closers = {_MIRROR.get(char, char) for char in opening if not char.isspace()}
    strip = "".join(closers) + _COMMENT_SEPARATORS
    text = rest
    while text and (text[0].isspace() or text[0] in strip):
        text = text[1:]
    return text.rstrip()


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
