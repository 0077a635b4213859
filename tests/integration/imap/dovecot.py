"""A real Dovecot (Debian's dovecot-imapd) on free 127.0.0.1 ports, for the IMAP tests.

`start_dovecot(tls)` writes a private configuration in a temporary directory (Maildir
storage, its own base/state dirs and log, TLS required, listening on 127.0.0.1 only), runs
`dovecot -F` in the foreground and stops it afterwards. The system's own Dovecot service,
if any, is never used. Any user name logs in with `PASSWORD` (or with `OAUTH_TOKEN` over
XOAUTH2: Dovecot verifies an OAuth token like a password against a static passdb), so each
test can take a fresh user and so a fresh, empty mailbox.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from m365emu.tls import TlsFiles

PASSWORD = "correct-horse-battery"  # no spaces: passdb args split on them
OAUTH_TOKEN = "ya29.test-access-token"
DOVECOT = shutil.which("dovecot", path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", ""))


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _users() -> tuple[str, str, int, int]:
    """Login user, internal user, mail uid and gid for the current privileges."""
    if os.getuid() != 0:  # unprivileged: every process runs as us
        me = pwd.getpwuid(os.getuid()).pw_name
        return me, me, os.getuid(), os.getgid()
    # As root: Dovecot's own system users, and `nobody` for the mail (Dovecot refuses uid 0).
    nobody = pwd.getpwnam("nobody")
    return "dovenull", "dovecot", nobody.pw_uid, nobody.pw_gid


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{root}/mail/%n
passdb {{
  driver = static
  args = password={password}
}}
passdb {{
  driver = static
  args = password={token}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%n
}}
namespace inbox {{
  inbox = yes
  separator = {separator}
  mailbox Trash {{
    special_use = \\Trash
    auto = create
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
# No brute-force delays: tests fail logins on purpose (a closed penalty socket disables them).
service anvil {{
  {chroot}
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  {chroot}
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"""


@dataclass
class Dovecot:
    host: str
    imap_port: int  # STARTTLS
    imaps_port: int  # implicit TLS
    ca_file: Path
    separator: str
    root: Path

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def new_user(self) -> str:
        return f"u{secrets.token_hex(5)}"

    @contextmanager
    def client(self, user: str) -> Iterator[imaplib.IMAP4_SSL]:
        """A plain imaplib session for setting up and checking mailboxes."""
        imap = imaplib.IMAP4_SSL(self.host, self.imaps_port, ssl_context=self.ssl_context())
        try:
            imap.login(user, PASSWORD)
        except BaseException:
            imap.shutdown()
            raise
        try:
            yield imap
        finally:
            imap.logout()  # closes the socket too

    def create(self, user: str, *folders: str) -> None:
        with self.client(user) as imap:
            for folder in folders:
                typ, data = imap.create(_quote(folder))
                assert typ == "OK", data

    def append(self, user: str, folder: str, raw: bytes, flags: str = "") -> int:
        """Deliver one message; its UID (from UIDPLUS's APPENDUID)."""
        with self.client(user) as imap:
            typ, data = imap.append(_quote(folder), flags or None, None, raw)
            assert typ == "OK", data
            found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            assert found, data
            return int(found.group(1))

    def uids(self, user: str, folder: str) -> list[int]:
        with self.client(user) as imap:
            imap.select(_quote(folder), readonly=True)
            _, data = imap.uid("SEARCH", "ALL")
            return [int(u) for u in (data[0] or b"").split()]

    def flags(self, user: str, folder: str, uid: int) -> str:
        with self.client(user) as imap:
            imap.select(_quote(folder), readonly=True)
            _, data = imap.uid("FETCH", str(uid), "(FLAGS)")
            return (data[0] or b"").decode() if isinstance(data[0], bytes) else ""


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen on {port}: {log.read_text(errors='replace')}")


@contextmanager
def start_dovecot(tls: TlsFiles, *, separator: str = ".") -> Iterator[Dovecot]:
    if DOVECOT is None:
        raise RuntimeError("dovecot is not installed: run `bash scripts/system-deps.sh`")
    # Not under pytest's tmp_path: its 0700 parents would keep the mail user out.
    root = Path(tempfile.mkdtemp(prefix="rg-dovecot-"))
    root.chmod(0o755)
    login_user, internal_user, uid, gid = _users()
    for sub in ("mail", "home"):
        (root / sub).mkdir()
        os.chown(root / sub, uid, gid)
    imap_port, imaps_port = free_port(), free_port()
    config = root / "dovecot.conf"
    config.write_text(
        CONFIG.format(
            root=root,
            cert=tls.cert_file,
            key=tls.key_file,
            login_user=login_user,
            internal_user=internal_user,
            uid=uid,
            gid=gid,
            password=PASSWORD,
            token=OAUTH_TOKEN,
            separator=separator,
            imap_port=imap_port,
            imaps_port=imaps_port,
            # Without root there is no chroot: the services run as we do.
            chroot="" if os.getuid() == 0 else "chroot =",
        )
    )
    with open(root / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    try:
        _wait_for(imap_port, process, root / "stderr.log")
        _wait_for(imaps_port, process, root / "stderr.log")
        yield Dovecot("127.0.0.1", imap_port, imaps_port, tls.ca_file, separator, root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if not os.environ.get("REPLYGATE_KEEP_DOVECOT"):
            shutil.rmtree(root, ignore_errors=True)
