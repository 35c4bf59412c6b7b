"""The private Prosody's TLS certificate: self-signed, made once, kept beside its config.

Chat clients (Dino, Conversations, Gajim, go-sendxmpp) will not send a
password over plain TCP, so the private server offers STARTTLS with this
certificate. Nobody vouches for it: a client asks once whether to trust it
(or is told to, as README.md says), and pins it from then on, so it is
kept across restarts and only made again when it no longer names the
domain or is about to expire.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 3650
RENEW_DAYS = 30          # made anew when it expires sooner than this


def ensure_certificate(directory: Path, domain: str) -> tuple[Path, Path]:
    """The certificate and key for `domain` (and its subdomains, such as the world's component)
    in `directory`, made when missing, stale or for another domain; returns (certificate, key)."""
    certificate, key = directory / f"{domain}.crt", directory / f"{domain}.key"
    if not _usable(certificate, key, domain):
        _make(certificate, key, domain)
    return certificate, key


def _usable(certificate: Path, key: Path, domain: str) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    except (OSError, ValueError):
        return False
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=RENEW_DAYS)
    return key.exists() and domain in names and cert.not_valid_after_utc > soon


def _make(certificate: Path, key: Path, domain: str) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fluxworld (self-signed, private server)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain), x509.DNSName(f"*.{domain}"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(private, hashes.SHA256()))
    directory = certificate.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
