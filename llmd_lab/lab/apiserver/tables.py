"""Server-side printing: ``meta.k8s.io/v1`` ``Table`` responses for ``kubectl get``.

kubectl asks for ``as=Table`` and prints whatever columns the server sends, so these column sets mirror
kube-apiserver's printers (pods READY/STATUS/RESTARTS/AGE, deployments READY/UP-TO-DATE/AVAILABLE…) and
custom resources get their CRD's ``additionalPrinterColumns``, evaluated as JSONPath.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from llmd_lab.lab.apiserver.registry import ResourceType

Column = dict[str, Any]
Row = list[Any]


def col(name: str, type_: str = "string", priority: int = 0, fmt: str = "", description: str = "") -> Column:
    return {"name": name, "type": type_, "format": fmt, "description": description or name, "priority": priority}


NAME = col("Name", fmt="name", description="Name must be unique within a namespace.")
AGE = col("Age", description="CreationTimestamp is a timestamp representing the server time when this object was created.")


# ---------------------------------------------------------------------------- durations
def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration`` (what AGE shows)."""
    if seconds < -1:
        return "<invalid>"
    s = round(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = int(seconds // 60)
    if minutes < 10:
        rest = int(seconds) % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = int(seconds // 3600)
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


@lru_cache(maxsize=4096)
def _epoch(timestamp: str) -> float | None:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def age(timestamp: str | None, now: float | None = None) -> str:
    then = _epoch(timestamp) if isinstance(timestamp, str) and timestamp else None
    if then is None:
        return "<unknown>"
    return human_duration((now if now is not None else time.time()) - then)


# ---------------------------------------------------------------------------- JSONPath (kubectl's subset)
_TOKEN = re.compile(
    r"""\.\.?(?P<field>[A-Za-z0-9_\-$]+)|\[\s*(?P<index>-?\d+|\*)\s*\]|\[\s*['"](?P<quoted>[^'"]+)['"]\s*\]"""
    r"""|\[\?\(@\.(?P<fpath>[A-Za-z0-9_.\-]+)\s*(?P<op>==|!=)\s*['"]?(?P<fval>[^'")]*)['"]?\s*\)\]|\.\*"""
)


def jsonpath(obj: Any, expr: str) -> list[Any]:
    """Evaluate a JSONPath like ``.status.conditions[?(@.type=="Ready")].status``; every match, in order."""
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    expr = expr.removeprefix("$")
    current = [obj]
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"unsupported JSONPath at {expr[pos:]!r}")
        pos = m.end()
        current = [found for node in current for found in _step(node, m)]
    return current


def _step(node: Any, m: re.Match) -> list[Any]:
    """What one JSONPath token selects from one node."""
    if m.group("field") is not None or m.group("quoted") is not None:
        key = m.group("field") or m.group("quoted")
        return [node[key]] if isinstance(node, dict) and key in node else []
    if m.group("index") is not None:
        if not isinstance(node, list):
            return []
        if m.group("index") == "*":
            return list(node)
        i = int(m.group("index"))
        return [node[i]] if -len(node) <= i < len(node) else []
    if m.group("fpath") is not None:
        if not isinstance(node, list):
            return []
        out = []
        for item in node:
            got = jsonpath(item, "." + m.group("fpath"))
            value = _text(got[0]) if got else None
            if (value == m.group("fval")) == (m.group("op") == "=="):
                out.append(item)
        return out
    if isinstance(node, dict):  # .*
        return list(node.values())
    return list(node) if isinstance(node, list) else []


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------- built-in printers
def _containers(obj: dict) -> list[dict]:
    return ((obj.get("spec") or {}).get("containers")) or []


def _pod_row(obj: dict) -> Row:
    status = obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for s in statuses:
        state = s.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            reason = state["terminated"].get("reason") or "Completed"
    if obj["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    last_restart = ""
    for s in statuses:
        finished = ((s.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished:
            last_restart = f" ({age(finished)} ago)"
    spec = obj.get("spec") or {}
    return [
        f"{ready}/{len(_containers(obj))}", reason, f"{restarts}{last_restart}" if restarts else str(restarts),
        status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>", "<none>",
    ]


def _node_row(obj: dict) -> Row:
    status = obj.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    state = "Ready" if conds.get("Ready") == "True" else "NotReady" if "Ready" in conds else "Unknown"
    if (obj.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = obj["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")) or ["<none>"]
    info = status.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [state, ",".join(roles), _age(obj), info.get("kubeletVersion", ""), addrs.get("InternalIP", "<none>"),
            addrs.get("ExternalIP", "<none>"), info.get("osImage", "<unknown>"), info.get("kernelVersion", "<unknown>"),
            info.get("containerRuntimeVersion", "<unknown>")]


def _images(obj: dict, template: bool = True) -> tuple[str, str]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    cs = spec.get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _selector(obj: dict) -> str:
    from llmd_lab.lab.apiserver.selectors import format_selector

    return format_selector((obj.get("spec") or {}).get("selector")) or "<none>"


def _deploy_row(obj: dict) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _images(obj)
    return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0), _age(obj), names, images, _selector(obj)]


def _rs_row(obj: dict) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _images(obj)
    return [spec.get("replicas", 0), status.get("replicas", 0), status.get("readyReplicas", 0), _age(obj), names,
            images, _selector(obj)]


def _sts_row(obj: dict) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _images(obj)
    return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", _age(obj), names, images]


def _svc_row(obj: dict) -> Row:
    spec = obj.get("spec") or {}
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or (
        "<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    ports = []
    for p in spec.get("ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        ports.append(f"{text}/{p.get('protocol', 'TCP')}")
    sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", external, ",".join(ports) or "<none>",
            _age(obj), sel]


def _event_row(obj: dict) -> Row:
    inv = obj.get("involvedObject") or obj.get("regarding") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or obj["metadata"].get("creationTimestamp")
    first = obj.get("firstTimestamp") or obj.get("eventTime") or obj["metadata"].get("creationTimestamp")
    source = (obj.get("source") or {}).get("component") or obj.get("reportingController") or obj.get(
        "reportingComponent") or ""
    return [age(last), obj.get("type", ""), obj.get("reason", ""),
            f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}", obj.get("message") or obj.get("note", ""),
            inv.get("fieldPath", ""), source, age(first), obj.get("count", 1), obj["metadata"]["name"]]


def _endpoints_row(obj: dict) -> Row:
    addrs = []
    for subset in obj.get("subsets") or []:
        for a in subset.get("addresses") or []:
            for p in subset.get("ports") or [{}]:
                addrs.append(f"{a.get('ip')}:{p.get('port')}" if p.get("port") else a.get("ip"))
    text = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")
    return [text or "<none>", _age(obj)]


def _slice_row(obj: dict) -> Row:
    ports = ",".join(str(p.get("port")) for p in obj.get("ports") or []) or "<unset>"
    addrs = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    text = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")
    return [obj.get("addressType", ""), ports, text or "<unset>", _age(obj)]


_JOB_STATES = (("Complete", "Complete"), ("Failed", "Failed"), ("", "Terminating"), ("Suspended", "Suspended"),
               ("FailureTarget", "FailureTarget"), ("SuccessCriteriaMet", "SuccessCriteriaMet"))


def _job_row(obj: dict) -> Row:
    """kubectl 1.32 printJob: the first of Complete, Failed, Terminating, Suspended, FailureTarget,
    SuccessCriteriaMet that holds, else Running; Duration from startTime to completionTime (or now)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conds = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    terminating = bool(obj["metadata"].get("deletionTimestamp"))
    state = next((label for cond, label in _JOB_STATES if (cond in conds if cond else terminating)), "Running")
    succeeded, parallelism = status.get("succeeded", 0), spec.get("parallelism")
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    else:
        completions = f"{succeeded}/1 of {parallelism}" if (parallelism or 1) > 1 or parallelism is None \
            else f"{succeeded}/1"
    start, end = _epoch(status.get("startTime") or ""), _epoch(status.get("completionTime") or "")
    duration = "" if start is None else human_duration((end if end is not None else time.time()) - start)
    return [state, completions, duration, _age(obj)]


_ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _modes(modes: list | None) -> str:
    return ",".join(_ACCESS_MODES.get(m, m) for m in modes or [])


def _pvc_row(obj: dict) -> Row:
    """kubectl 1.32 printPersistentVolumeClaim: capacity and modes only once the claim is bound."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    bound = bool(spec.get("volumeName"))
    return [status.get("phase", ""), spec.get("volumeName", ""),
            (status.get("capacity") or {}).get("storage", "") if bound else "",
            _modes(status.get("accessModes")) if bound else "", spec.get("storageClassName") or "",
            spec.get("volumeAttributesClassName") or "<unset>", _age(obj), spec.get("volumeMode", "Filesystem")]


def _pv_row(obj: dict) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("name") else ""
    return [(spec.get("capacity") or {}).get("storage", ""), _modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), status.get("phase", ""), claim,
            spec.get("storageClassName") or "", spec.get("volumeAttributesClassName") or "<unset>",
            status.get("reason", ""), _age(obj), spec.get("volumeMode", "Filesystem")]


def _storage_class_row(obj: dict) -> Row:
    return [obj.get("provisioner", ""), obj.get("reclaimPolicy", "Delete"), obj.get("volumeBindingMode", "Immediate"),
            str(bool(obj.get("allowVolumeExpansion"))).lower(), _age(obj)]


def _age(obj: dict) -> str:
    return age(obj["metadata"].get("creationTimestamp"))


Printer = tuple[list[Column], Callable[[dict], Row]]
PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "Pod"): ([col("Ready"), col("Status"), col("Restarts", "string"), col("IP", priority=1),
                   col("Node", priority=1), col("Nominated Node", priority=1), col("Readiness Gates", priority=1)],
                  _pod_row),
    ("", "Node"): ([col("Status"), col("Roles"), AGE, col("Version"), col("Internal-IP", priority=1),
                    col("External-IP", priority=1), col("OS-Image", priority=1), col("Kernel-Version", priority=1),
                    col("Container-Runtime", priority=1)], _node_row),
    ("apps", "Deployment"): ([col("Ready"), col("Up-to-date", "integer"), col("Available", "integer"), AGE,
                              col("Containers", priority=1), col("Images", priority=1), col("Selector", priority=1)],
                             _deploy_row),
    ("apps", "ReplicaSet"): ([col("Desired", "integer"), col("Current", "integer"), col("Ready", "integer"), AGE,
                              col("Containers", priority=1), col("Images", priority=1), col("Selector", priority=1)],
                             _rs_row),
    ("apps", "StatefulSet"): ([col("Ready"), AGE, col("Containers", priority=1), col("Images", priority=1)], _sts_row),
    ("", "Service"): ([col("Type"), col("Cluster-IP"), col("External-IP"), col("Port(s)"), AGE,
                       col("Selector", priority=1)], _svc_row),
    ("", "Namespace"): ([col("Status"), AGE], lambda o: [(o.get("status") or {}).get("phase", ""), _age(o)]),
    ("", "ConfigMap"): ([col("Data", "integer"), AGE], lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age(o)]),
    ("", "Secret"): ([col("Type"), col("Data", "integer"), AGE],
                     lambda o: [o.get("type", "Opaque"), len(o.get("data") or {}) + len(o.get("stringData") or {}), _age(o)]),
    ("", "ServiceAccount"): ([col("Secrets", "integer"), AGE], lambda o: [len(o.get("secrets") or []), _age(o)]),
    ("", "Endpoints"): ([col("Endpoints"), AGE], _endpoints_row),
    ("discovery.k8s.io", "EndpointSlice"): ([col("AddressType"), col("Ports"), col("Endpoints"), AGE], _slice_row),
    ("batch", "Job"): ([col("Status"), col("Completions"), col("Duration"), AGE], _job_row),
    ("", "PersistentVolumeClaim"): ([col("Status"), col("Volume"), col("Capacity"), col("Access Modes"),
                                     col("StorageClass"), col("VolumeAttributesClass"), AGE,
                                     col("VolumeMode", priority=1)], _pvc_row),
    ("", "PersistentVolume"): ([col("Capacity"), col("Access Modes"), col("Reclaim Policy"), col("Status"),
                                col("Claim"), col("StorageClass"), col("VolumeAttributesClass"), col("Reason"), AGE,
                                col("VolumeMode", priority=1)], _pv_row),
    ("storage.k8s.io", "StorageClass"): ([col("Provisioner"), col("ReclaimPolicy"), col("VolumeBindingMode"),
                                          col("AllowVolumeExpansion"), AGE], _storage_class_row),
    ("coordination.k8s.io", "Lease"): ([col("Holder"), AGE],
                                       lambda o: [(o.get("spec") or {}).get("holderIdentity", ""), _age(o)]),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        [col("Created At", "date")], lambda o: [o["metadata"].get("creationTimestamp", "")]),
}
_EVENT_COLUMNS = [col("Last Seen"), col("Type"), col("Reason"), col("Object"), col("Message"),
                  col("Subobject", priority=1), col("Source", priority=1), col("First Seen", priority=1),
                  col("Count", "integer", priority=1), col("Name", priority=1)]
PRINTERS[("", "Event")] = (_EVENT_COLUMNS, _event_row)
PRINTERS[("events.k8s.io", "Event")] = (_EVENT_COLUMNS, _event_row)


def _pod_columns_with_age(cols: list[Column]) -> list[Column]:
    return [*cols[:3], AGE, *cols[3:]]


def columns_and_row(rt: ResourceType) -> tuple[list[Column], Callable[[dict], Row]]:
    """Columns (after Name) and the row function for one resource type."""
    if rt.crd:
        if not rt.printer_columns:
            return [AGE], lambda o: [_age(o)]
        defs = [col(c["name"], c.get("type", "string"), int(c.get("priority", 0)), c.get("format", ""),
                    c.get("description", "")) for c in rt.printer_columns]

        def crd_row(obj: dict) -> Row:
            cells: Row = []
            for c in rt.printer_columns:
                try:
                    found = jsonpath(obj, c.get("jsonPath", ""))
                except ValueError:
                    found = []
                value = found[0] if found else None
                if value is not None and c.get("type") == "date":
                    value = age(str(value))
                elif isinstance(value, dict | list):
                    import json

                    value = json.dumps(value, separators=(",", ":"))
                cells.append(value)
            return cells

        return defs, crd_row
    printer = PRINTERS.get((rt.group, rt.kind))
    if printer is None:
        return [col("Created At", "date")], lambda o: [o["metadata"].get("creationTimestamp", "")]
    cols, row = printer
    if rt.kind == "Pod" and rt.group == "":
        def pod_row(obj: dict) -> Row:
            cells = row(obj)
            return [*cells[:3], _age(obj), *cells[3:]]

        return _pod_columns_with_age(cols), pod_row
    return cols, row


def table(rt: ResourceType, objects: list[dict], resource_version: str, include_object: str = "Metadata",
          continue_token: str | None = None) -> dict[str, Any]:
    """A ``Table`` with one row per object (``includeObject``: None, Metadata or Object)."""
    cols, row = columns_and_row(rt)
    name_col = NAME
    if rt.group == "" and rt.kind == "Event":
        # events print LAST SEEN first; kubectl keeps the server's column order
        columns = cols
        rows_fn: Callable[[dict], Row] = row
    else:
        columns = [name_col, *cols]

        def rows_fn(obj: dict) -> Row:
            return [obj["metadata"]["name"], *row(obj)]

    rows = []
    for obj in objects:
        entry: dict[str, Any] = {"cells": rows_fn(obj)}
        if include_object == "Object":
            entry["object"] = obj
        elif include_object != "None":
            entry["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                               "metadata": obj["metadata"]}
        rows.append(entry)
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns,
            "rows": rows}
