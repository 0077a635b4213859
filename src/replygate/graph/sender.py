"""Exactly-once sending through Graph: create a draft, persist its ids, send the draft.

Cost: 2 Graph requests per message (draft + send). Resuming costs 1 more (GET the draft) and
+1 when the draft is gone (search Sent Items by internetMessageId). A retry that never
stored its draft's id looks for the draft by its planned Message-ID first (`find_planned`,
Drafts then Sent Items: 1-2 requests, on that crash path only).

Drafts are created from MIME (base64 with `Content-Type: text/plain`), not from Graph's
message JSON: the JSON form holds one body and refuses every header but `X-` ones (at most
5), so it would drop the text alternative, `Auto-Submitted`, `In-Reply-To` and
`References`. MIME keeps the message exactly as composed, as SMTP sends it.
https://learn.microsoft.com/graph/api/user-post-messages ("Create a message in MIME format")
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from replygate.errors import AuthorizationNeeded, TransportFailure, UserError
from replygate.graph.client import GraphClient, SlidingWindow, segment
from replygate.graph.errors import CredentialRefused, GraphFailure, GraphNotFound
from replygate.mail.mime import random_message_id
from replygate.services.mail_ports import OutboundMail, SendOutcome, SendProgress, SendResult


class PermanentSendError(UserError):
    """Retrying cannot help (Send As missing, recipients refused, too large): mark failed."""

    def __init__(self, message: str, *, fix: str = "", cause: GraphFailure | None = None) -> None:
        super().__init__(message, fix=fix)
        self.cause = cause


class TransientSendError(TransportFailure):
    """Try again later: after `retry_after` seconds when Graph said so."""

    def __init__(self, message: str, *, fix: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, fix=fix)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Pacing:
    """Exchange Online accepts 30 messages per minute per mailbox; replygate queues the rest.

    The outbox keeps this pace across every replica through the database (services/sending);
    the sender's own window also paces, within one process, the mail sent outside the
    outbox (Test Email Configuration's test and loop-back mails)."""

    messages: int = 30
    per_seconds: float = 60.0


def mime_draft(mail: OutboundMail, now: datetime) -> bytes:
    """The base64 MIME body Graph takes to create a draft (`Content-Type: text/plain`)."""
    message_id = mail.message_id or random_message_id(mail.from_address)
    try:
        return base64.b64encode(mail.to_mime(message_id, now))
    except ValueError as error:  # an address or header the MIME form cannot carry
        raise PermanentSendError(
            f"The message cannot be sent: {error}", fix="Correct the addresses or headers."
        ) from None


class GraphMailSender:
    """`MailSender` over Graph. Thread-safe; share one per process."""

    def __init__(self, client: GraphClient, *, pacing: Pacing | None = None) -> None:
        self.client = client
        self.pacing = pacing or Pacing()
        self._lock = threading.Lock()
        self._pace: dict[str, SlidingWindow] = {}

    def _bucket(self, mailbox: str) -> SlidingWindow:
        with self._lock:
            key = mailbox.casefold()
            if key not in self._pace:
                self._pace[key] = SlidingWindow(
                    self.pacing.messages,
                    self.pacing.per_seconds,
                    clock=self.client.clock,
                    sleeper=self.client.sleeper,
                )
            return self._pace[key]

    @staticmethod
    def _user(mailbox: str) -> str:
        return f"users/{segment(mailbox)}"

    def create_draft(self, mail: OutboundMail) -> SendProgress:
        """Step 1 (1 request): the caller stores the result before calling `send_draft`."""
        content = mime_draft(mail, datetime.now(UTC))
        with _send_errors():
            response = self.client.request(
                "POST",
                f"{self._user(mail.from_address)}/messages",
                mailbox=mail.from_address,
                content=content,
                headers={"Content-Type": "text/plain"},
                idempotent=False,
            )
        body = response.json()
        return SendProgress(mail.from_address, str(body["id"]), str(body["internetMessageId"]))

    def send_draft(self, progress: SendProgress) -> SendResult:
        """Step 2 (1 request, paced). A draft already gone is looked for in Sent Items."""
        pace = self._bucket(progress.mailbox)
        stamp = pace.take()
        try:
            with _send_errors():
                self.client.request(
                    "POST",
                    f"{self._user(progress.mailbox)}/messages/{segment(progress.draft_id)}/send",
                    mailbox=progress.mailbox,
                    headers={"Content-Length": "0"},
                )
        except PermanentSendError as error:
            if not isinstance(error.cause, GraphNotFound):
                raise
            return self._look_in_sent_items(progress)
        finally:
            pace.settle(stamp)
        return SendResult(SendOutcome.SENT, progress.internet_message_id, progress.draft_id)

    def resume(self, progress: SendProgress) -> SendResult:
        """After a crash: send the draft if it is still one, else find it in Sent Items."""
        try:
            with _send_errors():
                found = self.client.get_json(
                    f"{self._user(progress.mailbox)}/messages/{segment(progress.draft_id)}",
                    mailbox=progress.mailbox,
                    params={"$select": "id,isDraft,internetMessageId"},
                )
        except PermanentSendError as error:
            if not isinstance(error.cause, GraphNotFound):
                raise
            return self._look_in_sent_items(progress)
        if found.get("isDraft"):
            return self.send_draft(progress)
        # Immutable ids: the draft's id now names the sent copy.
        return SendResult(SendOutcome.ALREADY_SENT, progress.internet_message_id, progress.draft_id)

    def find_planned(
        self, mailbox: str, internet_message_id: str
    ) -> SendProgress | SendResult | None:
        """After a crash between creating a draft and storing its id: that draft (to send),
        else its sent copy (ALREADY_SENT), else None (no draft was made: make one).

        Exchange may give a MIME draft its own Message-ID instead of the one planned; then
        nothing is found and a second draft is made, leaving the first in Drafts as before.
        That is why the draft's `internetMessageId` in Graph's answer is what gets stored."""
        hits = self._find(mailbox, "drafts", internet_message_id, "id,internetMessageId")
        if hits:
            found = hits[0]
            mid = str(found.get("internetMessageId") or internet_message_id)
            return SendProgress(mailbox, str(found["id"]), mid)
        sent = self._look_in_sent_items(SendProgress(mailbox, "", internet_message_id))
        return sent if sent.outcome is SendOutcome.ALREADY_SENT else None

    def _find(
        self, mailbox: str, folder: str, internet_message_id: str, select: str
    ) -> list[dict[str, object]]:
        wanted = internet_message_id.replace("'", "''")  # OData string literal
        with _send_errors():
            body = self.client.get_json(
                f"{self._user(mailbox)}/mailFolders/{folder}/messages",
                mailbox=mailbox,
                params={"$filter": f"internetMessageId eq '{wanted}'", "$select": select},
            )
        return list(body.get("value") or [])

    def _look_in_sent_items(self, progress: SendProgress) -> SendResult:
        hits = self._find(progress.mailbox, "sentitems", progress.internet_message_id, "id")
        if hits:
            return SendResult(
                SendOutcome.ALREADY_SENT, progress.internet_message_id, str(hits[0]["id"])
            )
        return SendResult(SendOutcome.LOST, progress.internet_message_id, None)

    def send(self, mail: OutboundMail, *, resume: SendProgress | None = None) -> SendResult:
        if resume is not None:
            return self.resume(resume)
        return self.send_draft(self.create_draft(mail))


@contextmanager
def _send_errors() -> Iterator[None]:
    """Graph errors -> PermanentSendError / TransientSendError with the plain reason."""
    try:
        yield
    except (AuthorizationNeeded, CredentialRefused):
        raise  # not the mail's fault: the outbox waits for an admin to fix the sign-in
    except GraphFailure as error:
        if error.permanent:
            raise PermanentSendError(error.message, fix=error.fix, cause=error) from error
        raise TransientSendError(
            error.message, fix=error.fix, retry_after=error.retry_after
        ) from error
