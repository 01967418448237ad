"""Child names exactly as KServe derives them: knative ``kmeta.ChildName(parent, suffix)``.

Every child of an ``LLMInferenceService`` is ``ChildName(<service name>, <suffix>)``; the suffixes are the
ones pkg/controller/llmisvc uses (workload_single_node.go, workload_multi_node.go, scheduler.go, router.go,
workload_tls_self_signed.go).
"""

from __future__ import annotations

import hashlib

API_VERSION = "serving.kserve.io/v1alpha1"
GROUP = "serving.kserve.io"
KIND = "LLMInferenceService"
CONFIG_KIND = "LLMInferenceServiceConfig"

LONGEST = 63  # validation.DNS1123LabelMaxLength
_MD5_LEN = 32

# suffixes KServe appends to the service name
WORKLOAD = "-kserve"
PREFILL_WORKLOAD = "-kserve-prefill"
MULTI_NODE = "-kserve-mn"
PREFILL_MULTI_NODE = "-kserve-mn-prefill"
WORKLOAD_ROLE = "-kserve-role"  # P/D routing sidecar's Role/RoleBinding
WORKLOAD_ROLE_BINDING = "-kserve-rb"
WORKLOAD_SERVICE = "-kserve-workload-svc"
SCHEDULER = "-kserve-router-scheduler"
EPP_SERVICE = "-epp-service"
EPP_SERVICE_ACCOUNT = "-epp-sa"
EPP_ROLE = "-epp-role"
EPP_ROLE_BINDING = "-epp-rb"
INFERENCE_POOL = "-inference-pool"
INFERENCE_MODEL = "-inference-model"
ROUTE = "-kserve-route"
ROUTE_AUTH_POLICY = "-kserve-route-authn"
SELF_SIGNED_CERTS = "-kserve-self-signed-certs"


def child_name(parent: str, suffix: str) -> str:
    """``parent + suffix``, or, past 63 characters, a cut parent + md5(parent) + suffix (kmeta.ChildName)."""
    if len(parent) <= LONGEST - len(suffix):
        return parent + suffix
    head = LONGEST - len(suffix) - _MD5_LEN
    digest = hashlib.md5(parent.encode(), usedforsecurity=False).hexdigest()
    if head <= 0:
        return hashlib.md5((parent + suffix).encode(), usedforsecurity=False).hexdigest()
    return parent[:head].rstrip("-") + digest + suffix
