"""The emulator over HTTPS, and replygate's Graph adapter wired to it with the real MSAL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from m365emu.tenant import MailboxGrant
from m365emu.testing import RunningEmulator, start_emulator
from replygate.graph.auth import GraphAuth, OAuthAppConfig, TokenProvider
from replygate.graph.client import GraphClient
from replygate.graph.clouds import CloudName, Mode
from replygate.graph.connection import GraphConnection, connect

SVC = "svc-replygate@contoso.test"


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    # One per test: MSAL caches failed token answers, and tests change grants and secrets.
    with start_emulator() as running:
        yield running


class Kit:
    """Builds providers and clients for one test and closes their connections after it."""

    def __init__(self, emu: RunningEmulator) -> None:
        self.emu = emu
        self._closers: list[Callable[[], None]] = []

    def config(self, mode: Mode, **extra: str) -> OAuthAppConfig:
        emu = self.emu
        return OAuthAppConfig(
            tenant=emu.tenant_id,
            client_id=emu.client_id,
            credential=emu.client_secret,
            cloud=CloudName.CUSTOM,
            mode=mode,
            authority_host=emu.base_url,
            graph_url=emu.graph_url,
            **extra,
        )

    def provider(self, mode: Mode, cache: str | None = None, **extra: str) -> TokenProvider:
        session = self.emu.requests_session()
        self._closers.append(session.close)
        return TokenProvider(self.config(mode, **extra), cache, http_client=session)

    def graph(self, tokens: TokenProvider, user: str | None = None) -> GraphClient:
        client = GraphClient(
            self.emu.base_url, GraphAuth(tokens), acting_user=user, verify=self.emu.ssl_context()
        )
        self._closers.append(client.close)
        return client

    def connection(self, mode: Mode, **extra: str) -> GraphConnection:
        session = self.emu.requests_session()
        made = connect(
            self.config(mode, **extra), http_client=session, verify=self.emu.ssl_context()
        )
        self._closers += [session.close, made.close]
        return made

    def close(self) -> None:
        for close in reversed(self._closers):
            close()


@pytest.fixture
def kit(emu: RunningEmulator) -> Iterator[Kit]:
    made = Kit(emu)
    yield made
    made.close()


def set_rights(emu: RunningEmulator, mailbox: str, grantee: str, *rights: str) -> None:
    tenant = emu.state.tenant
    tenant.grants = [g for g in tenant.grants if (g.mailbox, g.grantee) != (mailbox, grantee)]
    if rights:
        tenant.grants.append(MailboxGrant(mailbox, grantee, frozenset(rights)))
