"""One real Dovecot for the IMAP tests; every test logs in as a fresh user (empty mailbox)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from m365emu.tls import ensure_certificates
from replygate.imap import ImapReplyMailbox, ImapSettings
from replygate.smtp.credentials import Basic
from tests.integration.imap.dovecot import PASSWORD, Dovecot, start_dovecot


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    tls = ensure_certificates(tmp_path_factory.mktemp("imap-tls"))
    with start_dovecot(tls) as server:
        yield server


@pytest.fixture
def user(dovecot: Dovecot) -> str:
    return dovecot.new_user()


def settings_for(dovecot: Dovecot, user: str, **extra: object) -> ImapSettings:
    options: dict[str, object] = {
        "port": dovecot.imaps_port,
        "security": "tls",
        "credentials": Basic(user, PASSWORD),
        "ssl_context": dovecot.ssl_context(),
        "timeout": 10.0,
    }
    options |= extra
    return ImapSettings(dovecot.host, **options)  # type: ignore[arg-type]


MakeMailbox = Callable[..., ImapReplyMailbox]


@pytest.fixture
def make_mailbox(dovecot: Dovecot, user: str) -> Iterator[MakeMailbox]:
    opened: list[ImapReplyMailbox] = []

    def make(page_size: int = 100, use_move: bool = True, **extra: object) -> ImapReplyMailbox:
        box = ImapReplyMailbox(
            settings_for(dovecot, user, **extra),
            mailbox=f"{user}@example.test",
            page_size=page_size,
            use_move=use_move,
        )
        opened.append(box)
        return box

    yield make
    for box in opened:
        box.close()
