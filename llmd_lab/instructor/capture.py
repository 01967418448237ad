"""``llmd-lab profile capture``: describe a real cluster as a lab profile, so the class is rehearsed on its twin.

Read as the instructor through the ``kubernetes`` client: nodes and their GPUs, the OpenShift version, installed
operators (OLM ClusterServiceVersions), the CRDs that matter to llm-d with their full schemas, KServe's
LLMInferenceServiceConfig presets, the inference Gateway, and Kueue's flavors and queues. Written as a directory:
``profile.yaml`` (the format of ``llmd_lab/lab/profiles``), ``objects.yaml`` (presets and queues, included by the
profile) and ``crds/<name>.yaml`` (the captured schemas, which the lab serves instead of its own).

Nothing secret: Secrets, ConfigMaps and ServiceAccounts are never read; metadata is reduced to name, namespace
and labels (annotations are dropped: ``last-applied-configuration`` can hold anything); the written text is
scanned for token, key and kubeconfig shapes and nothing is written when one is found.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from llmd_lab import k8s
from llmd_lab.connection import Connection

#: API groups whose CRDs the workshop depends on (KServe, inference extension, Gateway API, LWS, Kueue, …).
GROUPS = (
    "serving.kserve.io", "inference.networking.x-k8s.io", "inference.networking.k8s.io", "gateway.networking.k8s.io",
    "leaderworkerset.x-k8s.io", "kueue.x-k8s.io", "kuadrant.io", "authorino.kuadrant.io", "monitoring.coreos.com",
    "route.openshift.io", "config.openshift.io", "operators.coreos.com", "datasciencecluster.opendatahub.io",
    "dscinitialization.opendatahub.io", "metallb.io",
)  # fmt: skip
#: Objects copied into the profile: (apiVersion, kind).
OBJECTS = (
    ("serving.kserve.io/v1alpha1", "LLMInferenceServiceConfig"),
    ("kueue.x-k8s.io/v1beta1", "ResourceFlavor"),
    ("kueue.x-k8s.io/v1beta1", "ClusterQueue"),
    ("kueue.x-k8s.io/v1beta1", "LocalQueue"),
)
SECRET_SHAPES = {
    "bearer token": re.compile(r"bearer\s+[A-Za-z0-9._~+/=-]{16,}", re.I),
    "OpenShift token": re.compile(r"sha256~[A-Za-z0-9_-]{20,}"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."),
    "PEM block": re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----"),
    "kubeconfig field": re.compile(r"(client-key-data|client-certificate-data|certificate-authority-data)"),
}
GPU = "nvidia.com/gpu"


class CaptureError(RuntimeError):
    """The capture cannot be written; the message says why (never the secret itself)."""


def _clean(obj: dict, *, keep_status: bool = False) -> dict:
    """An object reduced to what a profile needs: apiVersion, kind, name/namespace/labels, spec (and data)."""
    meta = obj.get("metadata", {})
    out: dict[str, Any] = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                           "metadata": {k: meta[k] for k in ("name", "namespace", "labels") if meta.get(k)}}
    for key in ("spec", *(("status",) if keep_status else ())):
        if key in obj:
            out[key] = obj[key]
    return out


def _role(labels: dict) -> str:
    if "node-role.kubernetes.io/master" in labels or "node-role.kubernetes.io/control-plane" in labels:
        return "master"
    return "worker"


def nodes(node_list: list[dict]) -> tuple[dict[str, dict], list[dict]]:
    """Profile ``nodeTypes`` and ``nodes`` groups from Node objects (instance type, CPU, memory, GPUs)."""
    types: dict[str, dict] = {}
    groups: Counter[tuple[str, str, str]] = Counter()
    for node in node_list:
        labels = node["metadata"].get("labels") or {}
        cap = node.get("status", {}).get("capacity") or {}
        itype = labels.get("node.kubernetes.io/instance-type") or labels.get("beta.kubernetes.io/instance-type")
        itype = itype or f"node-{cap.get('cpu', '?')}cpu"
        entry: dict[str, Any] = {"cpu": str(cap.get("cpu", "0")), "memory": str(cap.get("memory", "0"))}
        if int(cap.get(GPU, 0) or 0):
            gpu: dict[str, Any] = {"product": labels.get("nvidia.com/gpu.product", "unknown"),
                                   "count": int(cap[GPU])}
            if labels.get("nvidia.com/gpu.memory"):
                gpu["memoryMiB"] = int(labels["nvidia.com/gpu.memory"])
            if labels.get("nvidia.com/gpu.family"):
                gpu["family"] = labels["nvidia.com/gpu.family"]
            entry["gpu"] = gpu
        types.setdefault(itype, entry)
        groups[(itype, _role(labels), labels.get("topology.kubernetes.io/zone", ""))] += 1
    node_groups = [{"type": t, "count": n, "role": r, **({"zone": z} if z else {})}
                   for (t, r, z), n in sorted(groups.items())]
    return types, node_groups


def _openshift(conn: Connection, node_list: list[dict]) -> dict:
    cv = k8s.get(conn, "config.openshift.io/v1", "ClusterVersion", "version") if k8s.has_kind(
        conn, "config.openshift.io/v1", "ClusterVersion") else None
    version = ((cv or {}).get("status", {}).get("desired") or {}).get("version", "unknown")
    from kubernetes import client

    out = {"version": version, "kubernetesVersion": client.VersionApi(conn.api).get_code().git_version}
    if cv and cv.get("spec", {}).get("channel"):
        out["channel"] = cv["spec"]["channel"]
    regions = {(n["metadata"].get("labels") or {}).get("topology.kubernetes.io/region") for n in node_list} - {None}
    if regions:
        out["region"] = sorted(regions)[0]
    return out


def _operators(conn: Connection) -> list[dict]:
    seen: dict[str, dict] = {}
    for csv in k8s.list_objects(conn, "operators.coreos.com/v1alpha1", "ClusterServiceVersion"):
        if (csv.get("status") or {}).get("phase") != "Succeeded":
            continue
        meta, spec = csv["metadata"], csv.get("spec") or {}
        if meta.get("labels", {}).get("olm.copiedFrom"):  # OLM copies global operators' CSVs into every namespace
            continue
        seen.setdefault(meta["name"], {"name": meta["name"], "namespace": meta["namespace"],
                                       "displayName": spec.get("displayName", meta["name"]),
                                       "version": str(spec.get("version", ""))})
    return sorted(seen.values(), key=lambda o: o["name"])


def _gateway(conn: Connection) -> dict | None:
    gws = k8s.list_objects(conn, "gateway.networking.k8s.io/v1", "Gateway")
    gw = next((g for g in gws if g["metadata"]["name"] == "openshift-ai-inference"), gws[0] if gws else None)
    if gw is None:
        return None
    listeners = gw.get("spec", {}).get("listeners") or [{}]
    protocol = "HTTPS" if any(li.get("protocol") == "HTTPS" for li in listeners) else "HTTP"
    return {"name": gw["metadata"]["name"], "namespace": gw["metadata"]["namespace"],
            "className": gw["spec"]["gatewayClassName"], "protocol": protocol}


def _crds(conn: Connection) -> list[dict]:
    crds = k8s.list_objects(conn, "apiextensions.k8s.io/v1", "CustomResourceDefinition")
    return sorted((_clean(c) for c in crds if c.get("spec", {}).get("group") in GROUPS),
                  key=lambda c: c["metadata"]["name"])


def capture(conn: Connection, name: str) -> dict[str, str]:
    """The profile as ``{relative path: YAML text}``; raises :class:`CaptureError` if anything looks secret."""
    node_list = k8s.list_objects(conn, "v1", "Node")
    node_types, node_groups = nodes(node_list)
    crds = _crds(conn)
    objects = [_clean(o) for api, kind in OBJECTS if k8s.has_kind(conn, api, kind)
               for o in k8s.list_objects(conn, api, kind)]
    profile: dict[str, Any] = {
        "name": name,
        "description": f"captured from {conn.server} by `llmd-lab profile capture`",
        "openshift": _openshift(conn, node_list),
        "nodeTypes": node_types,
        "nodes": node_groups,
        "crds": [c["metadata"]["name"] for c in crds],
        "crdDir": "crds",
        "operators": _operators(conn),
        "include": ["objects.yaml"],
    }
    gateway = _gateway(conn)
    if gateway:
        profile["gateway"] = gateway
    files = {"profile.yaml": yaml.safe_dump(profile, sort_keys=False),
             "objects.yaml": yaml.safe_dump(objects, sort_keys=False)}
    files |= {f"crds/{c['metadata']['name']}.yaml": yaml.safe_dump(c, sort_keys=False) for c in crds}
    found = sorted({f"{shape} in {path}" for path, text in files.items()
                    for shape, rx in SECRET_SHAPES.items() if rx.search(text)})
    if found:
        raise CaptureError("refusing to write a profile that looks like it holds secrets: " + "; ".join(found))
    return files


def write(files: dict[str, str], out_dir: Path) -> Path:
    """Write the captured files under ``out_dir``; returns the profile file to pass to ``llmd-lab up --profile``."""
    for rel, text in files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return out_dir / "profile.yaml"
