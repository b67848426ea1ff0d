"""The API server's TLS: a CA and a serving certificate it signs (and a one-file self-signed form).

kubectl (client-go) sends a bearer token only over HTTPS: against an
``http://`` server it omits the ``Authorization`` header and every request
gets 401. The embedded server therefore serves TLS with a self-signed
certificate that is also its own CA; the kubeconfig names it in
``certificate-authority`` (or ``certificate-authority-data``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def write_self_signed(
    cert_path: str | Path,
    key_path: str | Path,
    *,
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    days: int = 3650,
) -> None:
    """Write a PEM certificate (CA and server, ECDSA P-256) and its PEM key (mode 0600).

    Args:
        hosts: IP addresses and DNS names for ``subjectAltName``.
        days: validity from one hour ago.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard-apiserver")])
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(str(key_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class Pki:
    """The API server's PKI under one directory (PEM files; keys mode 0600).

    Attributes:
        ca_cert: the CA certificate clients trust (kubeconfig ``certificate-authority``).
        cert, key: the serving certificate (signed by the CA; SANs 127.0.0.1, localhost) and its key.
    """

    ca_cert: Path
    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def ensure_pki(pki_dir: str | Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), days: int = 3650) -> Pki:
    """Make, on first use, a CA (``ca.crt``/``ca.key``) and a serving certificate it signs
    (``apiserver.crt``/``apiserver.key``), as kubeadm lays out ``/etc/kubernetes/pki``.

    Later calls reuse the files, so kubeconfigs written before stay valid.
    """
    pki = Path(pki_dir)
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    out = Pki(ca_cert=pki / "ca.crt", cert=pki / "apiserver.crt", key=pki / "apiserver.key")
    if out.ca_cert.exists() and out.cert.exists() and out.key.exists():
        return out
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(pki / "ca.key", ca_key)
    _write_key(out.key, key)
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))  # last: its presence means complete
    return out


def ensure_serving_certificate(pki_dir: str | Path) -> tuple[Path, Path, Path]:
    """``(ca_cert, cert, key)`` from :func:`ensure_pki`."""
    pki = ensure_pki(pki_dir)
    return pki.ca_cert, pki.cert, pki.key
