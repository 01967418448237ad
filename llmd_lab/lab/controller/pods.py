"""Pod facts every controller needs: readiness, activeness, template hashing, selectors."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.SafeEncodeString: no vowels, no look-alikes


def safe_encode(value: int, length: int = 10) -> str:
    out = []
    for _ in range(length):
        out.append(SAFE_ALPHABET[value % len(SAFE_ALPHABET)])
        value //= len(SAFE_ALPHABET)
    return "".join(out)


def template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """pod-template-hash: a stable digest of the pod template, encoded like Kubernetes (e.g. ``5d8f7c9b4x``)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")) + str(collision_count)
    return safe_encode(int.from_bytes(hashlib.sha256(data.encode()).digest()[:8], "big"))


def is_active(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in (
        "Succeeded", "Failed")


def is_ready(pod: dict[str, Any]) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = owner["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def controller_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def pod_from_template(template: dict[str, Any], *, namespace: str, owner: dict[str, Any], name: str | None = None,
                      generate_name: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta = copy.deepcopy(template.get("metadata") or {})
    meta["namespace"] = namespace
    meta["labels"] = {**(meta.get("labels") or {}), **(labels or {})}
    meta["ownerReferences"] = [controller_ref(owner)]
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name
    spec = copy.deepcopy(template.get("spec") or {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
