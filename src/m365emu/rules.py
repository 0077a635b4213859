"""Inbox rules (messageRule) evaluated at delivery time, as Exchange's transport does.

Resource: https://learn.microsoft.com/graph/api/resources/messagerule. Conditions of
different kinds must all hold; the values inside one condition are alternatives
(https://learn.microsoft.com/graph/api/resources/messagerulepredicates). Rules run in
`sequence` order until one with `stopProcessingRules` fires.
"""

from __future__ import annotations

from typing import Any

SUPPORTED_CONDITIONS = frozenset(
    {"fromAddresses", "subjectContains", "bodyContains", "senderContains", "bodyOrSubjectContains"}
)
SUPPORTED_ACTIONS = frozenset({"moveToFolder", "stopProcessingRules", "markAsRead", "delete"})


def _address(value: Any) -> str:
    if isinstance(value, dict):
        return str((value.get("emailAddress") or {}).get("address") or "").lower()
    return ""


def _contains(haystack: str, needles: list[Any]) -> bool:
    low = haystack.lower()
    return any(str(n).lower() in low for n in needles)


def matches(conditions: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Whether one message (Graph fields) satisfies every condition of a rule."""
    subject = str(fields.get("subject") or "")
    body = str((fields.get("body") or {}).get("content") or "")
    sender = fields.get("sender") or fields.get("from") or {}
    from_addr = _address(fields.get("from"))
    sender_text = " ".join(
        [_address(sender), str((sender.get("emailAddress") or {}).get("name") or "")]
    )
    texts = {
        "subjectContains": subject,
        "bodyContains": body,
        "senderContains": sender_text,
        "bodyOrSubjectContains": subject + "\n" + body,
    }
    for key, values in conditions.items():
        if not values or not isinstance(values, list):
            continue
        if key == "fromAddresses":
            if from_addr not in {_address(v) for v in values}:
                return False
        elif key in texts and not _contains(texts[key], values):
            return False
    return True


def evaluate(rules: list[dict[str, Any]], fields: dict[str, Any]) -> dict[str, Any]:
    """The combined actions of the enabled rules that match, in sequence order."""
    actions: dict[str, Any] = {}
    for rule in sorted(rules, key=lambda r: int(r.get("sequence") or 0)):
        if not rule.get("isEnabled", True):
            continue
        if not matches(rule.get("conditions") or {}, fields):
            continue
        exceptions = rule.get("exceptions") or {}
        if exceptions and any(exceptions.values()) and matches(exceptions, fields):
            continue
        for key, value in (rule.get("actions") or {}).items():
            actions.setdefault(key, value)
        if (rule.get("actions") or {}).get("stopProcessingRules"):
            break
    return actions


def validate(rule: dict[str, Any]) -> str | None:
    """An error message for a rule the emulator cannot honour, else None."""
    unknown_c = set(rule.get("conditions") or {}) - SUPPORTED_CONDITIONS
    unknown_a = set(rule.get("actions") or {}) - SUPPORTED_ACTIONS
    if unknown_c or unknown_a:
        return f"Unsupported rule properties in the emulator: {sorted(unknown_c | unknown_a)}"
    if not rule.get("displayName"):
        return "The displayName property is required."
    return None
