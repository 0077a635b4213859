"""The OData query options the Outlook mail API supports, parsed strictly.

https://learn.microsoft.com/graph/query-parameters and, for messages,
https://learn.microsoft.com/graph/api/user-list-messages: `$top` 1..1000 (default 10),
`$filter` with `$orderby` only when the order property leads the filter
(`InefficientFilter` otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from m365emu.graph.errors import GraphError, bad_request

MAX_TOP = 1000
_CLAUSE = re.compile(
    r"^\s*(?P<prop>[A-Za-z/]+)\s+(?P<op>eq|ne|ge|gt|le|lt)\s+(?P<value>'(?:[^']|'')*'|\S+)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Clause:
    prop: str
    op: str
    value: Any


@dataclass
class Query:
    select: list[str] | None = None
    top: int | None = None
    skip: int = 0
    filter: list[Clause] = field(default_factory=list)
    orderby: tuple[str, bool] | None = None  # (property, descending)


def _value(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    return text


def parse_filter(text: str) -> list[Clause]:
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(part)
        if m is None:
            raise bad_request(
                "Invalid filter clause: the query filter contains one or more invalid nodes.",
                "ErrorInvalidUrlQueryFilter",
            )
        clauses.append(Clause(m["prop"], m["op"].lower(), _value(m["value"])))
    return clauses


def parse(params: Mapping[str, str], default_top: int | None = 10) -> Query:
    q = Query(top=default_top)
    if params.get("$select"):
        q.select = [s.strip() for s in params["$select"].split(",") if s.strip()]
    if "$top" in params:
        try:
            top = int(params["$top"])
        except ValueError:
            raise bad_request("Invalid value for $top query parameter.") from None
        if not 1 <= top <= MAX_TOP:
            raise bad_request(
                f"The value '{top}' is not valid for $top; it must be between 1 and {MAX_TOP}.",
                "ErrorInvalidArgument",
            )
        q.top = top
    if "$skip" in params:
        try:
            q.skip = max(0, int(params["$skip"]))
        except ValueError:
            raise bad_request("Invalid value for $skip query parameter.") from None
    if params.get("$filter"):
        q.filter = parse_filter(params["$filter"])
    if params.get("$orderby"):
        prop, _, direction = params["$orderby"].strip().partition(" ")
        q.orderby = (prop, direction.strip().lower() == "desc")
        if q.filter and q.filter[0].prop.lower() != prop.lower():
            raise GraphError(
                400,
                "InefficientFilter",
                "The restriction or sort order is too complex for this operation.",
            )
    return q


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


def normalize_datetime(value: Any) -> str:
    """Graph compares instants; `2025-01-01T00:00:00Z` and `2025-01-01T00:00:00.000Z` are equal."""
    text = str(value)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(
            f"The DateTimeOffset text '{text}' should be in format "
            "'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' and each field value is within valid range."
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def matcher(
    clauses: list[Clause], props: Mapping[str, Callable[[Any], Any]]
) -> Callable[[Any], bool]:
    """A predicate over items; `props` maps lower-case property names to getters."""
    checks: list[Callable[[Any], bool]] = []
    for c in clauses:
        getter = props.get(c.prop.lower())
        if getter is None:
            raise bad_request(
                f"Could not find a property named '{c.prop}' on type 'microsoft.graph.message'.",
                "RequestBroker--ParseUri",
            )
        value = c.value
        if c.prop.lower().endswith("datetime"):
            value = normalize_datetime(value)
        checks.append(_check(getter, _OPS[c.op], value))
    return lambda item: all(check(item) for check in checks)


def _check(
    getter: Callable[[Any], Any], op: Callable[[Any, Any], bool], value: Any
) -> Callable[[Any], bool]:
    return lambda item: bool(op(getter(item), value))
