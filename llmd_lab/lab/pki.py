"""The lab API server's TLS: a private CA and a serving certificate for 127.0.0.1, made once per lab home.

The API server must speak HTTPS, as a cluster's does: client-go (kubectl) reads a kubeconfig's bearer token
only when the transport is TLS ("only try to read the auth information if we are secure"), so over plain
HTTP kubectl would arrive anonymous. The CA goes into the kubeconfig as ``certificate-authority-data``;
the keys stay in ``$LLMD_LAB_HOME/pki`` with mode 0600 and never leave it.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650


@dataclass(frozen=True)
class LabPki:
    """Paths of the CA certificate and the server's certificate and key."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def ca_data(self) -> str:
        """The CA certificate, base64-encoded as kubeconfig's ``certificate-authority-data`` wants it."""
        return base64.b64encode(self.ca_cert.read_bytes()).decode()

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts exactly this lab's CA (for httpx and friends)."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "llmd-lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def ensure_pki(directory: Path) -> LabPki:
    """Create the CA and the 127.0.0.1 serving certificate unless they exist; returns their paths."""
    pki = LabPki(directory)
    if pki.ca_cert.exists() and pki.server_cert.exists() and pki.server_key.exists():
        return pki
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    until = now + datetime.timedelta(days=VALID_DAYS)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("llmd-lab-ca")
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("kube-apiserver")).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(pki.server_key, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()), 0o600)
    _write(pki.server_cert, cert.public_bytes(pem), 0o600)
    _write(pki.ca_cert, ca_cert.public_bytes(pem), 0o600)  # last: its presence means the set is complete
    return pki
