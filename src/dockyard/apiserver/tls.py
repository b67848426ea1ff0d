"""A self-signed serving certificate for the API server.

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
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def write_self_signed(cert_path: str | Path, key_path: str | Path, *,
                      hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), days: int = 3650) -> None:
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
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(key, hashes.SHA256()))
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(str(key_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_serving_certificate(pki_dir: str | Path) -> tuple[Path, Path]:
    """``(cert, key)`` under ``pki_dir`` (``apiserver.crt``, ``apiserver.key``), made on first use.

    The certificate is its own CA: a kubeconfig names it in ``certificate-authority``.
    """
    pki = Path(pki_dir)
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key = pki / "apiserver.crt", pki / "apiserver.key"
    if not (cert.exists() and key.exists()):
        write_self_signed(cert, key)
    return cert, key
