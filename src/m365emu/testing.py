"""Run the emulator for a test suite: HTTPS on 127.0.0.1, a free port, a background thread.

    from m365emu.testing import start_emulator, run_msal_browser_login

    with start_emulator() as emu:                  # default tenant contoso.test
        app = emu.msal_app()                       # real msal.ConfidentialClientApplication
        flow = app.initiate_auth_code_flow(
            ["Mail.Send"], redirect_uri="https://127.0.0.1:8443/oauth/callback",
            prompt="select_account", response_mode="form_post")
        auth_response = run_msal_browser_login(flow["auth_uri"], emu.ca_file,
                                               account="svc-replygate@contoso.test")
        result = app.acquire_token_by_auth_code_flow(flow, auth_response)

`emu.state` is the live EmulatorState (control hooks: revoke_refresh_tokens, expire_secret,
set_consent, advance_clock). Clients must trust `emu.ca_file`; note that REQUESTS_CA_BUNDLE
overrides `verify=` in requests unless `trust_env=False` (what `requests_session` does).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from m365emu.identity.browser import AuthorizeResult, Browser, BrowserLoginError
from m365emu.state import EmulatorState
from m365emu.tenant import AppRegistration, Tenant
from m365emu.tls import ensure_certificates

if TYPE_CHECKING:
    import httpx
    import requests

__all__ = [
    "AuthorizeResult",
    "Browser",
    "BrowserLoginError",
    "RunningEmulator",
    "run_msal_browser_login",
    "start_emulator",
]


class RunningEmulator:
    """A started emulator; stop it with `.stop()` or use it as a context manager."""

    def __init__(
        self, state: EmulatorState, base_url: str, ca_file: Path, server: Any, thread: Any,
        workdir: Path, owns_workdir: bool,
    ) -> None:  # fmt: skip
        self.state = state
        self.base_url = base_url
        self.ca_file = ca_file
        self.workdir = workdir
        self._server = server
        self._thread: threading.Thread = thread
        self._owns_workdir = owns_workdir
        self._clients: list[Any] = []  # HTTP clients handed out, closed by stop()

    # --- URLs ------------------------------------------------------------------------

    @property
    def tenant_id(self) -> str:
        return self.state.tenant.id

    def authority(self, tenant_segment: str | None = None) -> str:
        """MSAL authority: `{base_url}/{tenant}` (default: the tenant id)."""
        return f"{self.base_url}/{tenant_segment or self.tenant_id}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    def logout_url(self, tenant_segment: str | None = None) -> str:
        return f"{self.authority(tenant_segment)}/oauth2/v2.0/logout"

    # --- the default app registration ------------------------------------------------

    @property
    def app(self) -> AppRegistration:
        """The tenant's first app registration ("replygate" in the default tenant)."""
        return self.state.tenant.apps[0]

    @property
    def client_id(self) -> str:
        return self.app.client_id

    @property
    def client_secret(self) -> str:
        return self.app.secrets[0].value

    # --- clients that trust the emulator ---------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def requests_session(self) -> requests.Session:
        """A requests.Session trusting the emulator CA (trust_env=False: see module doc)."""
        import requests

        session = requests.Session()
        session.verify = str(self.ca_file)
        session.trust_env = False
        self._clients.append(session)
        return session

    def httpx_client(self, **kwargs: Any) -> httpx.Client:
        import httpx

        client = httpx.Client(verify=self.ssl_context(), **kwargs)
        self._clients.append(client)
        return client

    def msal_app(
        self,
        client_id: str | None = None,
        client_credential: Any = None,
        *,
        tenant_segment: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A real msal.ConfidentialClientApplication pointed at the emulator.

        Defaults: the default app and its secret. Uses instance_discovery=False and
        azure_region=False (both needed off-line) and a fresh HTTP session per app, so that
        MSAL's 60-second cache of failed token responses never crosses tests."""
        import msal

        kwargs.setdefault("http_client", self.requests_session())
        kwargs.setdefault("instance_discovery", False)
        kwargs.setdefault("azure_region", False)
        return msal.ConfidentialClientApplication(
            client_id or self.client_id,
            client_credential=client_credential if client_credential is not None
            else self.client_secret,
            authority=self.authority(tenant_segment),
            **kwargs,
        )  # fmt: skip

    def msal_sign_in(
        self,
        browser: Browser,
        account: str | None,
        scopes: list[str],
        *,
        redirect_uri: str,
        app: Any = None,
        **flow_kwargs: Any,
    ) -> tuple[Any, dict[str, Any], AuthorizeResult]:
        """The whole MSAL auth-code flow: initiate -> `browser` -> acquire by auth code flow.

        `flow_kwargs` go to initiate_auth_code_flow (prompt, login_hint...); response_mode
        defaults to form_post (MSAL warns on query). Returns (msal app, MSAL result dict,
        what the browser saw: `.pages`, `.picker_shown`)."""
        app = app if app is not None else self.msal_app()
        flow_kwargs.setdefault("response_mode", "form_post")
        flow = app.initiate_auth_code_flow(scopes, redirect_uri=redirect_uri, **flow_kwargs)
        outcome = browser.authorize(flow["auth_uri"], account=account)
        return app, app.acquire_token_by_auth_code_flow(flow, outcome.params), outcome

    def browser(self) -> Browser:
        """A new browser profile (its own cookie jar) for the sign-in pages."""
        return Browser(self.ca_file)

    # --- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()


def _server_class() -> Any:
    import uvicorn

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # Abort client connections first: an idle keep-alive TLS connection would
            # otherwise hold the graceful shutdown until the client goes away.
            for connection in list(self.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()
            await super().shutdown(sockets)

    return _Server


def start_emulator(
    tenant: Tenant | None = None,
    *,
    workdir: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    state: EmulatorState | None = None,
) -> RunningEmulator:
    """Start the emulator (HTTPS, `port` 0 = a free port) and wait until it answers."""
    import uvicorn

    from m365emu.app import create_app

    owns = workdir is None
    root = Path(tempfile.mkdtemp(prefix="m365emu-")) if workdir is None else Path(workdir)
    tls = ensure_certificates(root / "tls")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    base_url = f"https://{host}:{sock.getsockname()[1]}"
    live = state if state is not None else EmulatorState(tenant)
    app = create_app(live, base_url)
    config = uvicorn.Config(
        app,
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",  # no websockets: nothing to import, nothing to warn about
    )
    server = _server_class()(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="m365emu", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("m365emu did not start")
        time.sleep(0.01)
    return RunningEmulator(live, base_url, tls.ca_file, server, thread, root, owns)


def run_msal_browser_login(
    auth_uri: str,
    ca_file: str | Path,
    *,
    account: str | None = None,
    consent: bool = True,
    browser: Browser | None = None,
) -> dict[str, str]:
    """Play the browser for MSAL's `flow["auth_uri"]`; return the `auth_response` dict for
    `acquire_token_by_auth_code_flow` (code, state, ... or error fields).

    Pass a long-lived `browser` to keep the emulator's sign-in session between calls (that
    is what makes a later authorize silently sign the previous user in)."""
    if browser is not None:
        return browser.authorize(auth_uri, account=account, consent=consent).params
    with Browser(ca_file) as fresh:
        return fresh.authorize(auth_uri, account=account, consent=consent).params
