"""Pure parsing of what imaplib hands back, and the ids replygate stores.

Ids: a cursor is `UIDVALIDITY:last UID`; a message id is `UIDVALIDITY:UID:folder` (the
folder's name as the server spells it), since UIDs mean something only within one folder
and one UIDVALIDITY.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from replygate.imap import utf7
from replygate.services.mail_ports import Address, RemoteMessage

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LIST = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delim>"(?:\\.|[^"\\])*"|NIL) ?(?P<name>.*)$')
_DATE = re.compile(r"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")


@dataclass(frozen=True)
class Folder:
    name: str  # as the server spells it (modified UTF-7): what commands take
    delimiter: str | None
    flags: frozenset[str]  # lower-case: \noselect, \trash...

    @property
    def display(self) -> str:
        readable = utf7.decode(self.name)
        return readable.replace(self.delimiter, "/") if self.delimiter else readable

    @property
    def selectable(self) -> bool:
        return not {"\\noselect", "\\nonexistent"} & self.flags


def unquote(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def parse_list(data: list[bytes | tuple[bytes, bytes] | None]) -> list[Folder]:
    folders = []
    for item in data:
        if item is None:
            continue
        line, literal = (item[0], item[1]) if isinstance(item, tuple) else (item, None)
        found = _LIST.match(line.strip())
        if not found:
            continue
        delim = None if found["delim"] == b"NIL" else unquote(found["delim"])
        name = literal.decode("utf-8", "replace") if literal is not None else unquote(found["name"])
        flags = frozenset(f.lower() for f in found["flags"].decode("ascii", "replace").split())
        folders.append(Folder(name, delim, flags))
    return folders


def quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def internaldate(value: str) -> datetime | None:
    found = _DATE.match(value)
    if not found or found[2].title() not in MONTHS:
        return None
    day, mon, year, hh, mm, ss, sign, oh, om = found.groups()
    offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
    return datetime(
        int(year),
        MONTHS.index(mon.title()) + 1,
        int(day),
        int(hh),
        int(mm),
        int(ss),
        tzinfo=timezone(offset),
    )


def search_date(moment: datetime) -> str:
    """An IMAP date (day granularity, locale-free) a day before `moment`, to be safe with
    time zones; the exact cut is made on INTERNALDATE afterwards."""
    day = (moment - timedelta(days=1)).date()
    return f"{day.day}-{MONTHS[day.month - 1]}-{day.year}"


def uids_of(data: list[bytes | None]) -> list[int]:
    return sorted({int(u) for line in data if line for u in line.split() if u.isdigit()})


def uid_set(uids: list[int]) -> str:
    """`1:3,7` for [1, 2, 3, 7]."""
    parts: list[str] = []
    ordered = sorted(set(uids))
    start = prev = ordered[0]
    for uid in [*ordered[1:], -1]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    return ",".join(parts)


def expand_set(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        a, b = int(low), int(high or low)
        out += list(range(min(a, b), max(a, b) + 1))
    return out


@dataclass(frozen=True)
class Fetched:
    uid: int
    meta: str  # everything but the literal: UID, FLAGS, INTERNALDATE...
    literal: bytes

    def item(self, name: str) -> str | None:
        found = re.search(rf"{name} (\"[^\"]*\"|\([^)]*\)|\S+)", self.meta)
        return found.group(1).strip('"()') if found else None


def parse_fetch(data: list[bytes | tuple[bytes, bytes] | None]) -> list[Fetched]:
    """FETCH answers with one literal each; text after a literal joins its metadata."""
    out: list[Fetched] = []
    meta: str | None = None
    literal = b""
    for item in [*data, None]:
        if isinstance(item, tuple) or item is None:
            if meta is not None:
                uid = re.search(r"UID (\d+)", meta)
                if uid:
                    out.append(Fetched(int(uid.group(1)), meta, literal))
            meta, literal = (item[0].decode("latin-1"), item[1]) if item else (None, b"")
        elif meta is not None:
            meta += " " + item.decode("latin-1")
    return out


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def _addresses(values: list[str]) -> tuple[Address, ...]:
    return tuple(
        Address(addr, _decoded(name)) for name, addr in getaddresses(values) if "@" in addr
    )


def remote_message(message_id: str, fetched: Fetched) -> RemoteMessage:
    headers = BytesHeaderParser(policy=compat32).parsebytes(fetched.literal)
    pairs = tuple((k, " ".join(str(v).split())) for k, v in headers.items())

    def values(name: str) -> list[str]:
        return [v for k, v in pairs if k.lower() == name]

    sender = _addresses(values("sender"))
    flags = (fetched.item("FLAGS") or "").lower().split()
    mid = values("message-id")
    return RemoteMessage(
        id=message_id,
        internet_message_id=mid[0].strip() if mid else None,
        subject=_decoded(values("subject")[0]) if values("subject") else "",
        from_=_addresses(values("from")),
        sender=sender[0] if sender else None,
        to=_addresses(values("to")),
        cc=_addresses(values("cc")),
        reply_to=_addresses(values("reply-to")),
        received_at=internaldate(fetched.item("INTERNALDATE") or ""),
        is_draft="\\draft" in flags,
        headers=pairs,
    )


def message_id(validity: int, uid: int, folder: str) -> str:
    return f"{validity}:{uid}:{folder}"


def parse_message_id(value: str) -> tuple[int, int, str]:
    validity, uid, folder = value.split(":", 2)
    return int(validity), int(uid), folder


def parse_cursor(value: str) -> tuple[int, int]:
    validity, _, last = value.partition(":")
    return int(validity), int(last or 0)
