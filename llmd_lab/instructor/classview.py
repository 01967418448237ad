"""The class at a glance: per attendee project, its services, the GPUs its pods hold, the notebooks it passed.

An attendee is a project that holds a workshop service, a GPU pod or a progress record (the ConfigMap each
notebook's check writes, :mod:`llmd_lab.course.progress`). Reading all of them needs cluster-wide list rights on
pods, ConfigMaps and LLMInferenceServices: the instructor's, not an attendee's.
"""

from __future__ import annotations

import pandas as pd

from llmd_lab import k8s, manifests
from llmd_lab.connection import Connection
from llmd_lab.course import progress

WORKSHOP_LABEL = "llmd-lab/workshop=true"


def _ready(obj: dict) -> bool:
    conds = obj.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def gpus_held(conn: Connection) -> dict[str, int]:
    """GPUs requested by pods bound to a node and not finished, per namespace."""
    held: dict[str, int] = {}
    for pod in k8s.list_objects(conn, "v1", "Pod"):
        spec, phase = pod.get("spec", {}), pod.get("status", {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            continue
        n = sum(int(((c.get("resources") or {}).get("requests") or {}).get(manifests.GPU_RESOURCE, 0) or 0)
                for c in spec.get("containers") or [])
        if n:
            ns = pod["metadata"]["namespace"]
            held[ns] = held.get(ns, 0) + n
    return held


def services(conn: Connection) -> dict[str, list[str]]:
    """Workshop LLMInferenceServices per namespace, as ``name (Ready|not ready)``."""
    out: dict[str, list[str]] = {}
    for obj in k8s.list_objects(conn, manifests.API_VERSION, manifests.KIND, label_selector=WORKSHOP_LABEL):
        meta = obj["metadata"]
        out.setdefault(meta["namespace"], []).append(f"{meta['name']} ({'Ready' if _ready(obj) else 'not ready'})")
    return out


def class_view(conn: Connection) -> pd.DataFrame:
    """One row per attendee project: services, GPUs held, notebooks passed (numbers), last pass."""
    svc, gpus, passed = services(conn), gpus_held(conn), progress.class_progress(conn)
    rows = []
    for ns in sorted(set(svc) | set(gpus) | set(passed)):
        done = passed.get(ns, {})
        rows.append({
            "project": ns,
            "services": ", ".join(sorted(svc.get(ns, []))) or "-",
            "gpus": gpus.get(ns, 0),
            "passed": " ".join(sorted(slug[:2] for slug in done)) or "-",
            "last_pass": max(done.values()) if done else "-",
        })
    return pd.DataFrame(rows, columns=["project", "services", "gpus", "passed", "last_pass"])
