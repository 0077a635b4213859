"""Trace headers Exchange Online adds on delivery (RFC 5321 4.4 `Received`, RFC 8601
`Authentication-Results`), so that delivered copies look like transport mail.

Exchange Online's inbound stamp (https://learn.microsoft.com/defender-office-365/
message-headers-eop-mdo): `Authentication-Results` with spf, dkim, dmarc and compauth
and no authserv-id, and `X-MS-Exchange-Organization-AuthAs` (Internal or Anonymous).
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime, parseaddr

from m365emu.mime import EXCHANGE_HOST, prepend_headers

INBOUND_HOST = "AM0PR02MB5714.eurprd02.prod.outlook.com"
DMARC_VALUES = frozenset({"pass", "fail", "none", "bestguesspass"})


def internal_trace(now: datetime) -> list[tuple[str, str]]:
    """Mail between mailboxes of the tenant: authenticated as Internal."""
    return [
        (
            "Received",
            f"from {EXCHANGE_HOST} (2603:10b6:510:2a::9) by {EXCHANGE_HOST} with HTTPS; "
            f"{format_datetime(now)}",
        ),
        ("X-MS-Exchange-Organization-AuthAs", "Internal"),
        ("X-MS-Exchange-Organization-AuthSource", EXCHANGE_HOST),
        ("X-MS-Exchange-Organization-SCL", "-1"),
    ]


def stamp_inbound(raw: bytes, now: datetime, dmarc: str = "pass") -> bytes:
    """What an outside message carries once Exchange Online accepted it."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", errors="replace")
    sender = ""
    for line in head.splitlines():
        if line.lower().startswith("from:"):
            sender = parseaddr(line[5:].strip())[1]
    domain = sender.rpartition("@")[2] or "unknown.invalid"
    passed = dmarc in ("pass", "bestguesspass")
    results = (
        f"spf={'pass' if passed else 'fail'} (sender IP is 192.0.2.25) smtp.mailfrom={domain}; "
        f"dkim={'pass' if passed else 'none'} (signature was verified) header.d={domain};"
        f"dmarc={dmarc} action={'none' if passed else 'quarantine'} header.from={domain};"
        f"compauth={'pass' if passed else 'fail'} reason={'100' if passed else '000'}"
    )
    trace = [
        (
            "Received",
            f"from mail.{domain} (192.0.2.25) by {INBOUND_HOST} with ESMTPS; "
            f"{format_datetime(now)}",
        ),
        ("Authentication-Results", results),
        ("X-MS-Exchange-Organization-AuthAs", "Anonymous"),
        ("X-MS-Exchange-Organization-SCL", "1"),
    ]
    return prepend_headers(raw, trace)
