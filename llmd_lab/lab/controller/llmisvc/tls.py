"""KServe's self-signed workload certificate (pkg/controller/llmisvc/workload_tls_self_signed.go @ rhoai-3.0).

One ``kubernetes.io/tls`` Secret ``<name>-kserve-self-signed-certs`` per service: an RSA-4096 key and a
self-signed certificate valid ten years, subject ``O=Kserve Self Signed`` and nothing else — no common name,
no DNS or IP SANs — so it verifies against no host name: clients must skip verification (the EPP scrapes
with ``--model-server-metrics-https-insecure-skip-verify``). The Secret is created once and kept while its
``certificates.kserve.io/expiration`` annotation (issue time + 8 years) lies ahead.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from llmd_lab.kserve import labels, names

DURATION = datetime.timedelta(days=365 * 10)
RENEW_BUFFER = DURATION / 5
EXPIRATION_ANNOTATION = "certificates.kserve.io/expiration"
ORGANIZATION = "Kserve Self Signed"


def new_key() -> rsa.RSAPrivateKey:
    """rsa.GenerateKey(rand.Reader, 4096): slow (prime search), so :class:`KeyPool` makes them ahead."""
    return rsa.generate_private_key(public_exponent=65537, key_size=4096)


class KeyPool:
    """A few RSA-4096 keys made ahead in a worker thread: the lab's controller would otherwise hold a new
    service's children back for the seconds a 4096-bit prime search takes on a busy laptop."""

    def __init__(self, size: int = 1) -> None:
        self._keys: asyncio.Queue[rsa.RSAPrivateKey] = asyncio.Queue(maxsize=size)

    async def run(self) -> None:
        while True:
            await self._keys.put(await asyncio.to_thread(new_key))

    async def get(self) -> rsa.RSAPrivateKey:
        return await self._keys.get()


def self_signed_pair(key: rsa.RSAPrivateKey, now: datetime.datetime) -> tuple[bytes, bytes]:
    """(PKCS#8 key PEM, certificate PEM) as createSelfSignedTLSCertificate makes them."""
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + DURATION)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, cert.public_bytes(pem)


def usable(secret: Mapping[str, Any] | None, now: datetime.datetime) -> bool:
    """An existing Secret with both halves whose expiration annotation is still ahead."""
    if not secret:
        return False
    data = secret.get("data") or {}
    expires = ((secret.get("metadata") or {}).get("annotations") or {}).get(EXPIRATION_ANNOTATION, "")
    try:
        ahead = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00")) > now
    except ValueError:
        return False
    return bool(data.get("tls.crt") and data.get("tls.key")) and ahead


def secret(llmisvc: Mapping[str, Any], key_pem: bytes, cert_pem: bytes, now: datetime.datetime,
           owner: dict) -> dict:
    """expectedSelfSignedCertsSecret: the workload's labels, the expiration annotation, the pair."""
    name = llmisvc["metadata"]["name"]
    expires = (now + DURATION - RENEW_BUFFER).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {
            "name": names.child_name(name, names.SELF_SIGNED_CERTS), "namespace": llmisvc["metadata"]["namespace"],
            "labels": {labels.COMPONENT_LABEL: labels.WORKLOAD_COMPONENT, **labels.base_labels(name)},
            "annotations": {EXPIRATION_ANNOTATION: expires},
            "ownerReferences": [owner],
        },
        "data": {"tls.crt": base64.b64encode(cert_pem).decode(), "tls.key": base64.b64encode(key_pem).decode()},
    }
