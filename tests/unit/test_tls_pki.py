"""The API server's PKI: a CA, a serving certificate it signs for 127.0.0.1, kept across starts."""

import ssl
import stat

from cryptography import x509

from dockyard.apiserver import tls


def test_ca_signs_a_loopback_serving_certificate_and_files_are_reused(tmp_path):
    pki = tls.ensure_pki(tmp_path / "pki")
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(pki.cert.read_bytes())
    assert cert.issuer == ca.subject and cert.subject != ca.subject
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(pki.key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "pki" / "ca.key").stat().st_mode) == 0o600
    before = pki.cert.read_bytes()
    assert tls.ensure_pki(tmp_path / "pki").cert.read_bytes() == before
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))  # loads as a trust anchor
    ctx.load_cert_chain(str(pki.cert), str(pki.key))
