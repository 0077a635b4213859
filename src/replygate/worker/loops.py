"""One worker: each round expires requests, sends due mail and reads the reply folder.

A round never raises: each step's error is logged and kept on ``last_errors`` (shown by
health), and the next round tries again. The mail transports are rebuilt when the Email
Settings change version, so a saved setting takes effect without a restart.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from replygate.bootstrap import Container
from replygate.errors import AuthorizationNeeded, ReplygateError
from replygate.mail.compose import MailContext
from replygate.mailflow import Mailflow, open_mailflow
from replygate.services.configuring import EmailSettings
from replygate.services.ingesting import IngestContext
from replygate.services.leasing import DEFAULT_LEASE, FolderLease
from replygate.services.reading import DisposalPolicy, ReadReport, read_folder
from replygate.services.requesting import expire_due_requests
from replygate.services.sending import SendingContext, SendReport, send_due
from replygate.services.webhooks import DeliveryReport, deliver_due
from replygate.worker.subscription import keep_subscription

log = logging.getLogger(__name__)
T = TypeVar("T")
SUBSCRIBE_RETRY = timedelta(minutes=30)  # after a refused or impossible subscription


@dataclass
class RoundReport:
    expired: list[str] = field(default_factory=list)
    sent: SendReport | None = None
    read: ReadReport | None = None
    webhooks: DeliveryReport | None = None
    errors: dict[str, str] = field(default_factory=dict)
    read_elsewhere: bool = False  # another worker holds the folder's lease this round
    sign_in_problem: str | None = None  # a step found the stored sign-in refused


def default_worker_id() -> str:
    """Host, pid and a random tag: unique even for two workers in one process (tests)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(2)}"


@dataclass
class Worker:
    container: Container
    worker_id: str = field(default_factory=lambda: default_worker_id())
    last_errors: dict[str, str] = field(default_factory=dict)
    lease_period: timedelta = DEFAULT_LEASE
    subscription: str = ""  # what keep_subscription last said (shown by health)
    _mailflow: Mailflow | None = None
    _settings_version: tuple[int, datetime | None, datetime | None] | None = None
    _flow_checked: bool = False  # this round already compared the settings' version
    _processed_folder_id: str | None = None
    _purged_at: datetime | None = None
    _subscribe_after: datetime | None = None
    _lease: FolderLease | None = None

    def run_once(self, *, read: bool = True) -> RoundReport:
        report = RoundReport()
        self._flow_checked = False
        report.expired = self._step(report, "expire", self._expire) or []
        self._step(report, "retention", self._purge_old_raw_mime)
        report.sent = self._step(report, "send", self._send)
        report.webhooks = self._step(report, "webhooks", self._webhooks)
        if read:
            report.read = self._step(report, "read", self._read)
            report.read_elsewhere = report.read is None and "read" not in report.errors
            if report.read is not None:  # only the folder's reader keeps its subscription
                self.subscription = self._step(report, "subscribe", self._subscribe) or ""
        if self._mailflow is not None:
            self._step(report, "tokens", self._mailflow.save_tokens)
            if report.sign_in_problem is not None or report.read is not None:
                # A read that worked proves the sign-in; a round that read nothing does not.
                flow = self._mailflow
                self._step(
                    report, "tokens", lambda: flow.record_sign_in_state(report.sign_in_problem)
                )
        self.last_errors = dict(report.errors)
        return report

    def run_forever(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Rounds until ``stop`` is set; the folder is read at the settings' polling interval."""
        next_read = 0.0
        wake = self.container.read_now
        while not stop.is_set():
            now = time.monotonic()
            reading = now >= next_read or wake.is_set()
            wake.clear()
            self.run_once(read=reading)
            if reading:
                polling = self._mailflow.settings.polling_interval_seconds if self._mailflow else 15
                next_read = now + polling
            # A change notification (web.notifications) cuts the wait short.
            wake.wait(interval)

    def _step(self, report: RoundReport, name: str, action: Callable[[], T]) -> T | None:
        try:
            return action()
        except ReplygateError as error:
            report.errors[name] = str(error)
            if isinstance(error, AuthorizationNeeded):
                report.sign_in_problem = str(error)
            if self.last_errors.get(name) != str(error):  # say it once, not every round
                log.warning("%s: %s", name, error)
        except DBAPIError as error:  # database down, restarting or full: say so plainly
            reason = " ".join(str(error.orig).split())[:300]
            report.errors[name] = f"the database failed: {reason}"
            if name not in self.last_errors:  # once per outage, not every round
                log.error("%s: the database failed (the loops retry): %s", name, reason)
        except Exception as error:  # one bad round must not stop the loops
            report.errors[name] = f"unexpected: {error!r}"
            log.exception("%s failed unexpectedly", name)
        return None

    def _flow(self) -> Mailflow:
        from replygate.services.configuring import current_settings

        if self._mailflow is not None and self._flow_checked:
            return self._mailflow  # once a round is enough: steps share the connection
        current = current_settings(self.container.uow())
        # Reopen when the settings change, when the OAuth application is edited (a new
        # secret) and when an admin authorised again: the cached connection would keep the
        # old credential or the old (revoked) tokens.
        version = (current[0], *self._application_version(current[1])) if current else None
        if self._mailflow is None or version != self._settings_version:
            if self._mailflow is not None:
                self._mailflow.close()
            self._mailflow = None
            self._mailflow = open_mailflow(self.container)
            self._settings_version = version
            self._processed_folder_id = None
        self._flow_checked = True
        return self._mailflow

    def _application_version(
        self, settings: EmailSettings
    ) -> tuple[datetime | None, datetime | None]:
        """(when the application was last edited, when its account was authorised)."""
        if not settings.smtp_oauth_application:
            return None, None
        with self.container.uow() as uow:
            app = uow.applications.by_name(settings.smtp_oauth_application)
            if app is None or app.id is None:
                return None, None
            cache = uow.token_caches.for_application(app.id)
            return app.updated_at, cache.authorised_at if cache else None

    def _purge_old_raw_mime(self) -> int:
        """Apply REPLYGATE_RAW_RETENTION_DAYS (cheap: one UPDATE, at most once an hour)."""
        now = self.container.clock.now()
        if self._purged_at is not None and now - self._purged_at < timedelta(hours=1):
            return 0
        self._purged_at = now
        days = self.container.settings.raw_retention_days
        with self.container.uow() as uow:
            purged = uow.ledger.purge_raw_mime(now - timedelta(days=days))
            uow.commit()
        return purged

    def _expire(self) -> list[str]:
        return expire_due_requests(self.container.uow(), self.container.clock)

    def _send(self) -> SendReport:
        flow = self._flow()
        settings = flow.settings
        assert settings.smtp_from_address is not None  # validated with the settings
        mail = MailContext(
            from_address=settings.smtp_from_address,
            reply_address=settings.reply_address,
            public_url=self.container.settings.public_url,
        )
        context = SendingContext(
            instance=self.container.settings.instance,
            mail=mail,
            sender=flow.sender,
            clock=self.container.clock,
            worker=self.worker_id,
            pacing=flow.pacing,
        )
        return send_due(self.container.uow, context)

    def _webhooks(self) -> DeliveryReport:  # needs no mail settings: runs even when mail cannot
        from replygate.worker.webhook_http import delivery_context

        return deliver_due(self.container.uow, delivery_context(self.container, self.worker_id))

    def _read(self) -> ReadReport | None:
        """Read the folder if this worker holds (or can take) its lease; else None."""
        flow = self._flow()
        settings = flow.settings
        assert settings.reply_address is not None  # open_mailflow checked it
        lease = self._folder_lease(settings.reply_address, settings.email_reply_folder)
        if not lease.acquire():
            return None  # another replica reads this folder; not an error
        mailbox = flow.reply_mailbox()
        if settings.processed_replies == "move" and self._processed_folder_id is None:
            self._processed_folder_id = mailbox.resolve_folder(settings.processed_folder)
        policy = DisposalPolicy(settings.processed_replies, self._processed_folder_id)
        context = IngestContext(
            instance=self.container.settings.instance,
            mailbox=settings.reply_address,
            folder=settings.email_reply_folder,
            clock=self.container.clock,
            internal_domains=frozenset({settings.reply_address.rpartition("@")[2]}),
            keep_raw_bytes=self.container.settings.max_message_bytes,
        )
        return read_folder(self.container.uow, context, mailbox, policy, hold=lease.keep)

    def _folder_lease(self, mailbox: str, folder: str) -> FolderLease:
        lease = self._lease
        if lease is None or (lease.mailbox, lease.folder) != (mailbox, folder):
            if lease is not None:  # the settings named another folder: hand the old one over
                lease.release()
            lease = self._lease = FolderLease(
                self.container.uow,
                self.container.clock,
                mailbox,
                folder,
                self.worker_id,
                self.lease_period,
            )
        return lease

    def _subscribe(self) -> str:
        now = self.container.clock.now()
        if self._subscribe_after is not None and now < self._subscribe_after:
            return self.subscription  # refused a while ago: do not ask Graph every round
        flow = self._flow()
        folder_id = flow.reply_mailbox().resolve_folder(flow.settings.email_reply_folder)
        outcome = keep_subscription(self.container, flow, folder_id)
        refused = outcome.startswith("polling only")
        self._subscribe_after = now + SUBSCRIBE_RETRY if refused else None
        return outcome

    def close(self) -> None:
        if self._lease is not None:
            try:
                self._lease.release()
            except Exception:  # the database may be the reason we stop; expiry frees it then
                log.warning("could not release the folder lease", exc_info=True)
        if self._mailflow is not None:
            self._mailflow.close()
