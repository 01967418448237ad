"""Child names and labels exactly as KServe derives them (knative ``kmeta.ChildName``)."""

from __future__ import annotations

import hashlib

LONGEST = 63
MD5_LEN = 32

PART_OF = "llminferenceservice"
GROUP = "serving.kserve.io"
API_VERSION = "serving.kserve.io/v1alpha1"
KIND = "LLMInferenceService"


def child_name(parent: str, suffix: str) -> str:
    """``parent + suffix``, or, when that exceeds 63 characters, a truncated parent + md5(parent) + suffix."""
    if len(parent) <= LONGEST - len(suffix):
        return parent + suffix
    head = LONGEST - len(suffix) - MD5_LEN
    digest = hashlib.md5(parent.encode(), usedforsecurity=False).hexdigest()
    if head <= 0:
        return hashlib.md5((parent + suffix).encode(), usedforsecurity=False).hexdigest()
    return parent[:head].rstrip("-") + digest + suffix


def base_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}


def workload_labels(name: str, component: str, role: str | None, *, workload: bool = True) -> dict[str, str]:
    """Labels of workload pods/Deployments: component, name, part-of, kserve.io/component, llm-d.ai/role."""
    labels = {"app.kubernetes.io/component": component, **base_labels(name)}
    if workload:
        labels["kserve.io/component"] = "workload"
    if role:
        labels["llm-d.ai/role"] = role
    return labels


def scheduler_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/component": "llminferenceservice-router-scheduler", **base_labels(name)}


def router_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/component": "llminferenceservice-router", **base_labels(name)}


def pool_selector(name: str) -> dict[str, str]:
    """Default InferencePool selector: every workload pod (decode and prefill) of this service."""
    return {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/name": name, "kserve.io/component": "workload"}


def owner_reference(llmisvc: dict) -> dict:
    meta = llmisvc["metadata"]
    return {
        "apiVersion": llmisvc.get("apiVersion", API_VERSION),
        "kind": KIND,
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }
