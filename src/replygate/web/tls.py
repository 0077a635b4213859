"""The HTTPS certificate: the configured one, or a self-signed one for local use.

The self-signed certificate is written to ``DATA_DIR/tls/`` (key mode 0600) for
``localhost``, ``127.0.0.1``, ``::1`` and the host of ``PUBLIC_URL``, and reused while it
is valid for those names for at least ``RENEW_BEFORE`` more; a client can trust
``cert.pem`` directly. Its extensions satisfy strict X.509 verification (Python 3.13).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from replygate.config import Settings
from replygate.errors import ConfigurationError

VALIDITY = timedelta(days=397)
RENEW_BEFORE = timedelta(days=30)
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    self_signed: bool
    fingerprint: str = ""  # SHA-256 of the self-signed certificate, to compare by eye


def certificate_hosts(settings: Settings) -> tuple[str, ...]:
    hosts = list(LOCAL_NAMES)
    public_host = urlsplit(settings.public_url).hostname
    extra = [public_host, settings.host]
    for host in extra:
        if host and host not in hosts and host not in ("0.0.0.0", "::"):  # noqa: S104 - a name check
            hosts.append(host)
    return tuple(hosts)


def tls_files(settings: Settings) -> TlsFiles:
    if settings.tls_cert_file is not None or settings.tls_key_file is not None:
        return _configured(settings.tls_cert_file, settings.tls_key_file)
    return ensure_self_signed(settings.data_dir / "tls", certificate_hosts(settings))


def _configured(cert: Path | None, key: Path | None) -> TlsFiles:
    if cert is None or key is None:
        raise ConfigurationError(
            "REPLYGATE_TLS_CERT_FILE and REPLYGATE_TLS_KEY_FILE go together; only one is set",
            fix="set both, or neither to use a generated self-signed certificate",
        )
    for path, name in ((cert, "TLS_CERT_FILE"), (key, "TLS_KEY_FILE")):
        if not path.is_file():
            raise ConfigurationError(f"REPLYGATE_{name}: {path} does not exist")
    return TlsFiles(cert, key, self_signed=False)


def ensure_self_signed(directory: Path, hosts: tuple[str, ...]) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    certificate = _reusable(cert_file, key_file, hosts)
    if certificate is None:
        certificate = _generate(cert_file, key_file, hosts)
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    return TlsFiles(cert_file, key_file, self_signed=True, fingerprint=fingerprint)


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _generate(cert_file: Path, key_file: Path, hosts: tuple[str, ...]) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "replygate (self-signed)"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
        ]
    )
    start = datetime.now(UTC) - timedelta(minutes=5)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(hosts), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Write the key first with mode 0600, and replace both files atomically.
    _write(key_file, pem, 0o600)
    _write(cert_file, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return certificate


def _write(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def _reusable(cert_file: Path, key_file: Path, hosts: tuple[str, ...]) -> x509.Certificate | None:
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        return None
    names = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    names |= set(san.get_values_for_type(x509.DNSName))
    covered = {str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in hosts} <= names
    fresh = certificate.not_valid_after_utc > datetime.now(UTC) + RENEW_BEFORE
    return (
        certificate if covered and fresh and key.public_key() == certificate.public_key() else None
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
