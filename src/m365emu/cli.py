"""`m365emu serve`: run the emulator over HTTPS with a generated certificate.

Imports stay inside the command so that `m365emu --help` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="m365emu", description="A Microsoft 365 emulator (identity platform + Graph mail)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator over HTTPS")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8700, help="port to listen on")
    serve.add_argument("--tenant", type=Path, help="tenant file (TOML or JSON); default: bundled")
    serve.add_argument(
        "--state-dir", type=Path, help="where the TLS certificates live (default: user data dir)"
    )
    serve.add_argument(
        "--public-base", help="external https origin if not https://HOST:PORT (e.g. a proxy)"
    )
    return parser


def serve(args: argparse.Namespace) -> int:
    import platformdirs
    import uvicorn

    from m365emu.app import create_app
    from m365emu.state import EmulatorState
    from m365emu.tenant import default_tenant, load_tenant
    from m365emu.tls import DEFAULT_HOSTS, ensure_certificates

    tenant = load_tenant(args.tenant) if args.tenant else default_tenant()
    state_dir = args.state_dir or Path(platformdirs.user_data_dir("m365emu"))
    wildcard = args.host in ("0.0.0.0", "::")  # noqa: S104  # the user asked for it
    hosts = DEFAULT_HOSTS if wildcard or args.host in DEFAULT_HOSTS else (args.host, *DEFAULT_HOSTS)
    tls = ensure_certificates(state_dir / "tls", hosts)
    shown_host = "127.0.0.1" if wildcard else args.host
    base = (args.public_base or f"https://{shown_host}:{args.port}").rstrip("/")
    state = EmulatorState(tenant)
    app = create_app(state, base)
    lines = [
        f"m365emu: tenant {tenant.display_name} ({tenant.id}, {', '.join(tenant.domains)})",
        f"  base URL   {base}",
        f"  authority  {base}/{tenant.id}",
        f"  Graph      {base}/v1.0",
        f"  trust CA   {tls.ca_file}",
    ]
    for reg in tenant.apps:
        secret = reg.secrets[0].value if reg.secrets else "(certificate only)"
        lines.append(f"  app        {reg.display_name}: client id {reg.client_id}, secret {secret}")
    print("\n".join(lines), flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
        log_level="info",
        ws="none",
        # Idle keep-alive TLS connections would otherwise hold Ctrl-C for many seconds.
        timeout_graceful_shutdown=1,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2


def run() -> None:
    """Console-script entry point (`m365emu` in pyproject.toml)."""
    sys.exit(main())
