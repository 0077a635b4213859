"""`MailSender` over SMTP.

SMTP has no drafts, so the two steps of the port become:
- `create_draft` fixes the message: it builds the MIME bytes with a new Message-ID (the
  `draft_id` and the `internet_message_id` of the returned `SendProgress`) and keeps them
  in memory;
- `send_draft` delivers those bytes in one SMTP transaction.

Exactly-once is not possible over SMTP: the 250 after DATA can be lost (timeout, crash)
after the server took the message. replygate chooses AT-LEAST-ONCE for mail it still
holds: a message is known as sent only once the server's 250 was recorded here; any other
outcome leaves it pending, and `resume`/`send_draft` send it again with the SAME
Message-ID (receivers often drop a second copy with a Message-ID they have seen, Gmail
does, and a reply to either copy matches the request). After a process restart the bytes
are gone: `resume` returns LOST (the outbox marks the row failed and tells the operator to
check and retry), unless the caller passes the mail again through
`send(mail, resume=progress)`, which resends it with the stored Message-ID.

Every header is kept (Message-ID, Reply-To, In-Reply-To, References, Auto-Submitted,
X-Auto-Response-Suppress...), as Graph's MIME drafts do. One connection per message; sends
are paced (default 30 per minute, Exchange Online's SMTP AUTH limit per mailbox).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from replygate.mail.mime import random_message_id
from replygate.services.mail_ports import OutboundMail, SendOutcome, SendProgress, SendResult
from replygate.smtp.credentials import (
    Basic,
    Credentials,
    NoAuth,
    Security,
    XOAuth2,
    is_loopback,
    tls_context,
    xoauth2_response,
)
from replygate.smtp.errors import PermanentSendError, SmtpConfigurationError, smtp_errors

log = logging.getLogger(__name__)

MAX_HELD = 1000  # messages kept in memory between the two steps (and known as sent)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Pacing:
    """Exchange Online accepts 30 messages per minute per mailbox over SMTP AUTH too;
    replygate waits instead of being throttled (4.3.2 / 432 answers)."""

    messages: int = 30
    per_seconds: float = 60.0


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: Security = "starttls"
    credentials: Credentials = field(default_factory=NoAuth)
    ssl_context: ssl.SSLContext | None = None  # None: the system's trust store, verified
    timeout: float = 30.0
    local_hostname: str | None = None  # the EHLO name; None: this machine's FQDN
    pacing: Pacing | None = field(default_factory=Pacing)  # None: send as fast as asked


@dataclass(frozen=True)
class _Held:
    sender: str
    recipients: tuple[str, ...]
    data: bytes


class SmtpMailSender:
    """`MailSender` over SMTP. Thread-safe; share one per process."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        clock: Callable[[], datetime] = _now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._pace_lock = threading.Lock()
        self._sent_at: deque[float] = deque()
        self._pending: OrderedDict[str, _Held] = OrderedDict()
        self._accepted: OrderedDict[str, None] = OrderedDict()

    # --- the port -----------------------------------------------------------------------

    def create_draft(self, mail: OutboundMail, *, message_id: str | None = None) -> SendProgress:
        """Step 1, no network: build the message with its final Message-ID and hold it."""
        mid = message_id or mail.message_id or random_message_id(mail.from_address)
        try:
            data = mail.to_mime(mid, self.clock())
        except ValueError as error:  # an address or header the MIME form cannot carry
            raise PermanentSendError(
                f"The message cannot be sent over SMTP: {error}",
                fix="Correct the addresses or headers.",
            ) from None
        held = _Held(mail.from_address, tuple(dict.fromkeys(mail.to + mail.cc)), data)
        with self._lock:
            self._pending[mid] = held
            while len(self._pending) > MAX_HELD:
                self._pending.popitem(last=False)
        return SendProgress(mail.from_address, mid, mid)

    def send_draft(self, progress: SendProgress) -> SendResult:
        """Step 2: one SMTP transaction. Not held (restart): see `resume`."""
        with self._lock:
            if progress.draft_id in self._accepted:
                return self._result(SendOutcome.ALREADY_SENT, progress)
            held = self._pending.get(progress.draft_id)
        if held is None:
            return self._result(SendOutcome.LOST, progress)
        self._transmit(held)
        with self._lock:
            self._pending.pop(progress.draft_id, None)
            self._accepted[progress.draft_id] = None
            while len(self._accepted) > MAX_HELD:
                self._accepted.popitem(last=False)
        return self._result(SendOutcome.SENT, progress)

    def resume(self, progress: SendProgress) -> SendResult:
        """After a failure: ALREADY_SENT if the 250 was recorded, else send the held copy
        again (at least once); LOST when this process no longer holds it."""
        return self.send_draft(progress)

    def send(self, mail: OutboundMail, *, resume: SendProgress | None = None) -> SendResult:
        if resume is None:
            return self.send_draft(self.create_draft(mail))
        with self._lock:
            known = resume.draft_id in self._accepted or resume.draft_id in self._pending
        if not known:  # held by an earlier process: rebuild it with the same Message-ID
            self.create_draft(mail, message_id=resume.internet_message_id)
        return self.send_draft(resume)

    @staticmethod
    def _result(outcome: SendOutcome, progress: SendProgress) -> SendResult:
        return SendResult(outcome, progress.internet_message_id, progress.draft_id)

    # --- SMTP ---------------------------------------------------------------------------

    def _pace(self) -> None:
        """Wait until one more message fits the window (senders queue on the lock)."""
        pacing = self.settings.pacing
        if pacing is None:
            return
        with self._pace_lock:
            now = self._monotonic()
            while self._sent_at and now - self._sent_at[0] >= pacing.per_seconds:
                self._sent_at.popleft()
            if len(self._sent_at) >= pacing.messages:
                self._sleep(pacing.per_seconds - (now - self._sent_at.popleft()))
                now = self._monotonic()
            self._sent_at.append(now)

    def _transmit(self, held: _Held) -> None:
        s = self.settings
        self._pace()
        oauth = isinstance(s.credentials, XOAuth2)
        with smtp_errors(s.host, s.port, oauth), self._connect() as smtp:
            self._login(smtp)
            refused = smtp.sendmail(held.sender, list(held.recipients), held.data)
        if refused:  # the others got it: sent; the refused ones are reported, not retried
            log.warning(
                "SMTP server %s refused some recipients: %s",
                s.host,
                ", ".join(f"{a} ({c})" for a, (c, _) in refused.items()),
            )

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = tls_context(s.ssl_context)
        smtp: smtplib.SMTP
        if s.security == "tls":
            smtp = smtplib.SMTP_SSL(
                s.host, s.port, s.local_hostname, timeout=s.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, s.local_hostname, timeout=s.timeout)
        try:
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):  # never fall back to plain text
                    raise SmtpConfigurationError(
                        f"The SMTP server {s.host}:{s.port} does not offer STARTTLS.",
                        fix="Use implicit TLS (usually port 465) or another port.",
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        s = self.settings
        creds = s.credentials
        if isinstance(creds, NoAuth):
            return
        if s.security == "none" and not is_loopback(s.host):
            raise SmtpConfigurationError(
                f"Refusing to send a password to {s.host} without TLS.",
                fix="Set SMTP security to starttls or tls.",
            )
        if isinstance(creds, Basic):
            smtp.login(creds.username, creds.password)
            return
        if not smtp.has_extn("auth") or "XOAUTH2" not in smtp.esmtp_features["auth"].upper():
            raise SmtpConfigurationError(
                f"The SMTP server {s.host}:{s.port} does not offer XOAUTH2.",
                fix="Use basic auth with this server, or a server that accepts OAuth.",
            )
        response = xoauth2_response(creds.username, creds.token())
        answers = iter([response])

        def authobject(challenge: bytes | None = None) -> str:
            # The first call is the initial response; a second is the server's error
            # challenge, which XOAUTH2 answers with an empty line so the 535 follows.
            return next(answers, b"").decode()

        smtp.auth("XOAUTH2", authobject, initial_response_ok=True)
