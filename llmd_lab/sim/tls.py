"""TLS as KServe sets it up for a workload: a self-signed certificate, servers that load it from a mounted
Secret, and clients that skip verification exactly where upstream configures them to.

KServe (``pkg/controller/llmisvc/workload_tls_self_signed.go`` @ rhoai-3.0) signs a certificate with
organization "Kserve Self Signed", server-auth usage and no DNS or IP SANs, so it verifies against nothing:
Istio's DestinationRules and the EPP's scraper are told ``insecureSkipVerify``. :func:`self_signed_pem`
makes the same kind of certificate (EC P-256 instead of RSA 4096: generating RSA keys costs seconds per pod).
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def self_signed_pem(days: int = 3650) -> tuple[bytes, bytes]:
    """(certificate, PKCS#8 key) in PEM, like KServe's workload certificate: no SANs, server auth only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kserve Self Signed")])
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_ssl_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A server context as uvicorn builds it for ``--ssl-certfile/--ssl-keyfile`` (raises ``ssl.SSLError`` or
    ``OSError`` exactly where uvicorn would)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


def ssl_context_from_pem(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context from PEM bytes (a mounted Secret's ``tls.crt``/``tls.key``); the files exist only while
    ``load_cert_chain`` reads them, in a private temporary directory."""
    with tempfile.TemporaryDirectory(prefix="llmd-lab-tls-") as tmp:
        cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for path, data in ((cert, cert_pem), (key, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        return server_ssl_context(cert, key)


def insecure_client_context() -> ssl.SSLContext:
    """TLS that verifies nothing: what ``insecureSkipVerify: true`` means (KServe's Istio DestinationRules, the
    EPP's ``--model-server-metrics-https-insecure-skip-verify``). Use only where upstream does."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
