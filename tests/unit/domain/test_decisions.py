"""REPLY-GRAMMAR.md sections 3 and 4, rule by rule, with examples beyond the samples."""

from __future__ import annotations

import pytest

from replygate.domain.decisions import parse_decision, strip_reply_prefixes
from replygate.domain.model import Verdict

APPROVE, REJECT = Verdict.APPROVE, Verdict.REJECT
SUBJECT = "Re: [RG-prod-7KQ2M9XW4D] Deploy payments-api 2.3.1"


def verdict_of(text: str, subject: str = SUBJECT) -> Verdict | None:
    return parse_decision(text, subject).verdict


@pytest.mark.parametrize(
    "word",
    [
        "approve", "approved", "approving", "yes", "genehmigt", "genehmigen", "approuvé",
        "approuve", "approuver", "aprobado", "apruebo", "aprobar", "goedgekeurd", "goedkeuren",
    ],
)  # fmt: skip
def test_every_approve_word_in_any_case(word: str) -> None:
    assert verdict_of(word) is APPROVE
    assert verdict_of(word.upper()) is APPROVE
    assert verdict_of(word.capitalize() + ".") is APPROVE


@pytest.mark.parametrize(
    "word",
    [
        "reject", "rejected", "rejecting", "deny", "denied", "decline", "declined", "no",
        "abgelehnt", "ablehnen", "rejeté", "rejete", "refusé", "refuse", "refuser", "rechazado",
        "rechazo", "rechazar", "afgewezen", "afwijzen",
    ],
)  # fmt: skip
def test_every_reject_word_in_any_case(word: str) -> None:
    assert verdict_of(word) is REJECT
    assert verdict_of(word.upper()) is REJECT


def test_decomposed_accents_are_the_same_word() -> None:
    assert verdict_of("Approuve\u0301") is APPROVE  # e + combining acute


@pytest.mark.parametrize(
    "text",
    ["approvedd", "Approves", "nope", "Yesterday was fine", "yess", "noted", "rejectable",
     "approved-ish", "Approve2", "approve_now", "disapprove", "unapproved"],
)  # fmt: skip
def test_the_word_must_be_whole(text: str) -> None:
    assert verdict_of(text) is None


@pytest.mark.parametrize(
    "text",
    ["*Approve*", '"Approved"', "[Reject]", "  - approved", "**APPROVED**", "(approve)",
     "“Approved”", "_yes_", "> not a quote marker here: approved"],
)  # fmt: skip
def test_leading_punctuation_and_emphasis(text: str) -> None:
    expected = None if text.startswith(">") else (REJECT if "Reject" in text else APPROVE)
    assert verdict_of(text) is expected


def test_only_the_first_non_empty_line_decides() -> None:
    assert verdict_of("\n\n   \nApproved\nNo, wait") is APPROVE
    assert verdict_of("Looks fine to me\nApproved") is None
    assert verdict_of("Thanks!\n\nReject") is None


@pytest.mark.parametrize(
    "text",
    ["not approved", "Not approved - the changelog is wrong", "do not approve", "Don't approve",
     "don’t approve.", "DO NOT APPROVE!", "nicht genehmigt", "Pas approuvé : trop tôt",
     "no aprobado", "No aprobado: faltan notas", "niet goedgekeurd", "Niet goedgekeurd, te vroeg"],
)  # fmt: skip
def test_negation_means_reject(text: str) -> None:
    result = parse_decision(text, SUBJECT)
    assert result.verdict is REJECT
    assert result.reason == "negation"


def test_negation_comment() -> None:
    result = parse_decision("Do not approve – screenshots are old.\nSee QA-12.", SUBJECT)
    assert result.comment == "screenshots are old.\nSee QA-12."


@pytest.mark.parametrize(
    "text",
    ["Can't approve yet", "I approve", "I do not approve", "won't approve", "not rejected",
     "Approval granted", "ok", "OK!", "lgtm", "LGTM 🚀", "+1", "sure", "Sure, go ahead",
     "👍", "👍 ", "✅", "go ahead", "ship it", "fine by me", "Approve👍"],
)  # fmt: skip
def test_not_a_decision(text: str) -> None:
    assert verdict_of(text) is None
    assert parse_decision(text, SUBJECT).comment == ""


@pytest.mark.parametrize(
    "text",
    ["approve?", "Approve ?", "Approved??", "*Approve*?", "Approve, right?", "Reject?",
     "Yes? I thought we were frozen"],
)  # fmt: skip
def test_question_means_no_decision(text: str) -> None:
    result = parse_decision(text, SUBJECT)
    assert (result.verdict, result.reason) == (None, "question")


@pytest.mark.parametrize(
    "text",
    ["approve if the canary holds", "Approve once QA signs off", "approve after the freeze",
     "Approved but only for staging", "approve, maybe", "Approved, unless Ops objects",
     "Approve – if the tests pass", "Approved: once the freeze ends", "Approved only for eu-west",
     "Genehmigt, wenn die Tests grün sind", "Approuvé si le client valide",
     "Aprobado cuando termine la migración", "Goedgekeurd zodra de tests slagen",
     "Reject unless the rollback plan is attached", "Yes, provided the DBA is on call",
     "Approved; after review of the logs", "No, wait until Monday"],
)  # fmt: skip
def test_condition_means_no_decision(text: str) -> None:
    result = parse_decision(text, SUBJECT)
    assert (result.verdict, result.reason) == (None, "condition")


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Approved. Please roll out after 18:00.", APPROVE),
        ("Approved. If anything breaks, roll back.", APPROVE),
        ("Deny – staging is still red after the last merge", REJECT),
        ("Rejected: the runbook is out of date", REJECT),
        ("Approved, go ahead with 2.3.1.", APPROVE),
        ("Approved!\nIf the pools fail to reconnect, redeploy.", APPROVE),
    ],
)
def test_later_sentence_or_comment_does_not_hedge(text: str, verdict: Verdict) -> None:
    assert verdict_of(text) is verdict


@pytest.mark.parametrize(
    "text",
    ["yes, reject it", "No problem, approved", "no problem, approved!", "Approved. No.",
     "Reject – yes I know", "Approve or reject?", "Approved, denied", "Abgelehnt, ja genehmigt"],
)  # fmt: skip
def test_conflict_means_no_decision(text: str) -> None:
    assert verdict_of(text) is None


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Yes, approved", APPROVE),
        ("No, not approved", REJECT),
        ("Rejected, do not approve this one", REJECT),
        ("Approved, not rejected", APPROVE),
        ("No, no, no", REJECT),
        ("Yes, yes", APPROVE),
    ],
)
def test_words_of_the_same_sense_do_not_conflict(text: str, verdict: Verdict) -> None:
    assert verdict_of(text) is verdict


@pytest.mark.parametrize(
    ("text", "comment"),
    [
        ("Approved – smoke tests look good", "smoke tests look good"),
        ("Approved - smoke tests look good", "smoke tests look good"),
        ("Approved — done", "done"),
        ("Rejected: runbook is wrong", "runbook is wrong"),
        ("Refusé : pas validé", "pas validé"),
        ("Approved, thanks", "thanks"),
        ("Approved. Thanks", "Thanks"),
        ("Approved; thanks", "thanks"),
        ("Approved\u200b", ""),
        ("Approved! thanks", "thanks"),
        ("*Approve* looks fine", "looks fine"),
        ('"Approved" by me', "by me"),
        ("[Reject] too early", "too early"),
        ("Approved", ""),
        ("Approved\n\nChange window confirmed.\nRavi", "Change window confirmed.\nRavi"),
        ("Approved: see below\nline two", "see below\nline two"),
    ],
)
def test_comment_is_the_rest_of_the_line_and_the_following_lines(text: str, comment: str) -> None:
    assert parse_decision(text, SUBJECT).comment == comment


@pytest.mark.parametrize(
    ("subject", "verdict"),
    [
        ("APPROVE [RG-prod-7KQ2M9XW4D] Deploy payments-api 2.3.1", APPROVE),
        ("REJECT [RG-prod-7KQ2M9XW4D] Deploy payments-api 2.3.1", REJECT),
        ("RE: AW: APPROVE [RG-prod-7KQ2M9XW4D] Deploy", APPROVE),
        ("RE: AW: [RG-prod-7KQ2M9XW4D] APPROVE", APPROVE),
        ("Re: Re: [RG-prod-7KQ2M9XW4D] Reject", REJECT),
        ("SV: Antw: RV: TR: WG: FW: approve [RG-prod-7KQ2M9XW4D] x", APPROVE),
        ("RE[2]: approve [RG-prod-7KQ2M9XW4D] x", APPROVE),
        ("[Fwd:] APPROVE [RG-prod-7KQ2M9XW4D] x", APPROVE),
        ("APPROVE [RG-prod-7KQ2M9XW4D] Deploy if green, or not", APPROVE),
        ("Re: [RG-prod-7KQ2M9XW4D] Approve the Q3 budget", None),
        ("Re: [RG-prod-7KQ2M9XW4D] Deploy payments-api 2.3.1", None),
        ("RE: approve? [RG-prod-7KQ2M9XW4D] x", None),
        ("RE: approve if green [RG-prod-7KQ2M9XW4D] x", None),
        ("RE: approvedd [RG-prod-7KQ2M9XW4D] x", None),
        ("not approved [RG-prod-7KQ2M9XW4D] x", REJECT),
        ("", None),
        ("Re:", None),
    ],
)
def test_subject_decides_when_the_body_is_empty(subject: str, verdict: Verdict | None) -> None:
    result = parse_decision("  \n\n", subject)
    assert result.verdict is verdict
    assert result.from_subject
    assert result.comment == ""


def test_subject_is_ignored_when_the_body_has_text() -> None:
    result = parse_decision("Rollback plan is missing.", "REJECT [RG-prod-7KQ2M9XW4D] x")
    assert result.verdict is None
    assert not result.from_subject


def test_strip_reply_prefixes() -> None:
    assert strip_reply_prefixes("RE: AW: Re[3]: Antw:  SV:x") == "x"
    assert strip_reply_prefixes("Reply needed") == "Reply needed"


def test_invisible_format_characters_are_ignored() -> None:
    assert verdict_of("\u200bApproved\u200b") is APPROVE
    assert verdict_of("\ufeffReject") is REJECT


def test_decisions_import_only_the_standard_library_and_the_domain() -> None:
    import ast
    import sys
    from pathlib import Path

    import replygate.domain.decisions as module

    tree = ast.parse(Path(module.__file__ or "").read_text("utf-8"))
    imported = {
        name
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        )
    }  # fmt: skip
    for name in imported:
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or name.startswith("replygate.domain"), name
