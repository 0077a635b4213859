"""The self-signed certificate: generated once, reused while valid, trusted as it is."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from replygate.config import load_settings
from replygate.errors import ConfigurationError
from replygate.web.tls import certificate_hosts, ensure_self_signed, tls_files


def test_generated_for_local_names_and_the_public_host(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, public_url="https://approvals.contoso.test")
    files = tls_files(settings)
    assert files.self_signed
    assert files.cert_file == tmp_path / "tls" / "cert.pem"
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "approvals.contoso.test"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    # A client can trust the certificate file as it is.
    context = ssl.create_default_context(cafile=str(files.cert_file))
    context.load_cert_chain(files.cert_file, files.key_file)


def test_reused_while_valid_and_renewed_when_names_change(tmp_path: Path) -> None:
    hosts = ("localhost", "127.0.0.1")
    first = ensure_self_signed(tmp_path, hosts)
    again = ensure_self_signed(tmp_path, hosts)
    assert again.fingerprint == first.fingerprint
    renewed = ensure_self_signed(tmp_path, (*hosts, "rg.contoso.test"))
    assert renewed.fingerprint != first.fingerprint
    first.cert_file.write_text("garbage")
    assert ensure_self_signed(tmp_path, hosts).fingerprint not in ("", renewed.fingerprint)


def test_listen_address_is_included_unless_wildcard(tmp_path: Path) -> None:
    named = load_settings(data_dir=tmp_path, host="192.0.2.10")
    assert "192.0.2.10" in certificate_hosts(named)
    wildcard = load_settings(data_dir=tmp_path, host="0.0.0.0")  # noqa: S104
    assert "0.0.0.0" not in certificate_hosts(wildcard)  # noqa: S104


def test_configured_files_are_used_and_checked(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    files = tls_files(load_settings(data_dir=tmp_path, tls_cert_file=cert, tls_key_file=key))
    assert (files.cert_file, files.key_file, files.self_signed) == (cert, key, False)
    with pytest.raises(ConfigurationError, match="go together"):
        tls_files(load_settings(data_dir=tmp_path, tls_cert_file=cert))
    with pytest.raises(ConfigurationError, match="does not exist"):
        tls_files(
            load_settings(data_dir=tmp_path, tls_cert_file=cert, tls_key_file=key.parent / "nope")
        )
