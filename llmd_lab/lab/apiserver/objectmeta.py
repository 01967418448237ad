"""Object metadata rules every kind shares: names, generateName, labels, timestamps, defaults on create."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.registry import ResourceType

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# generateName suffix alphabet of apimachinery's rand.String (no vowels, no confusable digits)
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
DNS_LABEL_KINDS = {("", "Namespace"), ("", "Service")}
PATH_SEGMENT_GROUPS = {"rbac.authorization.k8s.io"}
# Kinds whose strategy maintains metadata.generation (built-ins with a spec that controllers act on).
GENERATION_GROUPS = {"apps", "batch", "apiextensions.k8s.io"}
BUILTIN_GROUPS = {
    "", "apps", "batch", "events.k8s.io", "discovery.k8s.io", "rbac.authorization.k8s.io",
    "authorization.k8s.io", "authentication.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io",
}


def now(clock: Callable[[], datetime] | None = None) -> str:
    """RFC 3339 seconds, UTC, as ``metav1.Time`` serialises."""
    moment = clock() if clock else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHANUMS) for _ in range(5))


def tracks_generation(rt: ResourceType) -> bool:
    return rt.group in GENERATION_GROUPS or rt.group not in BUILTIN_GROUPS


def check_shape(obj: Any) -> None:
    """The typed-decoding errors kube-apiserver answers with 400 before any validation."""
    if not isinstance(obj, Mapping):
        raise errors.bad_request(f"the object must be a JSON/YAML mapping, not {type(obj).__name__}")
    if not obj.get("apiVersion") or not isinstance(obj.get("apiVersion"), str):
        raise errors.bad_request("Object 'apiVersion' is missing in the request body (set apiVersion, e.g. v1)")
    if not obj.get("kind") or not isinstance(obj.get("kind"), str):
        raise errors.bad_request("Object 'Kind' is missing in the request body (set kind, e.g. ConfigMap)")
    meta = obj.get("metadata", {})
    if meta is None:
        return
    if not isinstance(meta, Mapping):
        raise errors.bad_request(
            f"json: cannot unmarshal {type(meta).__name__} into Go struct field .metadata of type v1.ObjectMeta"
        )
    for field in ("labels", "annotations"):
        _check_string_map(meta.get(field), field)
    for field in ("name", "generateName", "namespace", "resourceVersion", "uid"):
        value = meta.get(field)
        if value is not None and not isinstance(value, str):
            raise errors.bad_request(
                f"json: cannot unmarshal {type(value).__name__} into Go struct field ObjectMeta.metadata.{field} "
                "of type string"
            )
    value = meta.get("finalizers")
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise errors.bad_request("metadata.finalizers must be a list of strings")
    refs = meta.get("ownerReferences")
    if refs is not None and (not isinstance(refs, list) or not all(isinstance(r, Mapping) for r in refs)):
        raise errors.bad_request("metadata.ownerReferences must be a list of objects")


def _check_string_map(value: Any, field: str) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise errors.bad_request(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field ObjectMeta.metadata.{field} "
            "of type map[string]string"
        )
    for key, item in value.items():
        if not isinstance(item, str):
            raise errors.bad_request(
                f"json: cannot unmarshal {type(item).__name__} into Go struct field "
                f"ObjectMeta.metadata.{field} of type string (metadata.{field}.{key} must be a string; quote it)"
            )


def name_causes(rt: ResourceType, name: str, field: str = "metadata.name") -> list[dict[str, str]]:
    if rt.group in PATH_SEGMENT_GROUPS:
        if name in (".", "..") or "/" in name or "%" in name:
            return [errors.field_cause(field, f'Invalid value: "{name}": may not be \'.\' or \'..\' or contain \'/\' or \'%\'')]
        return []
    if (rt.group, rt.kind) in DNS_LABEL_KINDS:
        if len(name) > 63 or not _LABEL.match(name):
            return [errors.field_cause(
                field,
                f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case alphanumeric '
                "characters or '-', start and end with an alphanumeric character, and be at most 63 characters "
                "(e.g. 'my-name', or '123-abc')",
            )]
        return []
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        return [errors.field_cause(
            field,
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
            "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')",
        )]
    return []


def label_causes(meta: Mapping[str, Any]) -> list[dict[str, str]]:
    causes = []
    for key, value in (meta.get("labels") or {}).items():
        causes += _key_causes(key, "metadata.labels")
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(errors.field_cause(
                "metadata.labels",
                f'Invalid value: "{value}": a valid label must be an empty string or consist of alphanumeric '
                "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
                "(at most 63 characters)",
            ))
    for key in meta.get("annotations") or {}:
        causes += _key_causes(key, "metadata.annotations")
    return causes


def _key_causes(key: str, field: str) -> list[dict[str, str]]:
    prefix, _, name = key.rpartition("/")
    ok = bool(name) and len(name) <= 63 and _QUALIFIED.match(name) and (not prefix or _SUBDOMAIN.match(prefix))
    if ok:
        return []
    return [errors.field_cause(
        field,
        f'Invalid value: "{key}": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', and '
        "must start and end with an alphanumeric character, with an optional DNS subdomain prefix and '/'",
    )]


def _namespace_defaults(obj: dict[str, Any], spec: Any) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}


def _pod_defaults(obj: dict[str, Any], spec: Any) -> None:
    if isinstance(spec, dict):
        for field, value in (("restartPolicy", "Always"), ("terminationGracePeriodSeconds", 30),
                             ("dnsPolicy", "ClusterFirst"), ("schedulerName", "default-scheduler"),
                             ("serviceAccountName", "default"), ("enableServiceLinks", True), ("priority", 0)):
            spec.setdefault(field, value)
    obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _workload_defaults(obj: dict[str, Any], spec: Any) -> None:
    if isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if obj.get("kind") == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            if not (spec.get("strategy") or {}).get("type"):
                spec["strategy"] = {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    obj["status"] = {}


def _service_defaults(obj: dict[str, Any], spec: Any) -> None:
    if isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
    obj["status"] = {"loadBalancer": {}}


def _empty_status(obj: dict[str, Any], spec: Any) -> None:
    obj["status"] = {}


JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
CONTROLLER_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")


def _job_defaults(obj: dict[str, Any], spec: Any) -> None:
    """batch/v1 SetDefaults_Job (parallelism and completions 1 when both unset, backoffLimit 6, NonIndexed,
    suspend false, podReplacementPolicy TerminatingOrFailed) and the job strategy's ``generateSelector``:
    the template gets the job-name and controller-uid labels (legacy and ``batch.kubernetes.io/``), the
    selector matches the uid (kubernetes pkg/apis/batch/v1/defaults.go, pkg/registry/batch/job/strategy.go)."""
    obj["status"] = {}
    if not isinstance(spec, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    for field, value in (("parallelism", 1), ("backoffLimit", 6), ("completionMode", "NonIndexed"),
                         ("suspend", False), ("podReplacementPolicy", "TerminatingOrFailed")):
        if spec.get(field) is None:
            spec[field] = value
    template = spec.get("template")
    if spec.get("manualSelector") or not isinstance(template, dict):
        return
    meta = obj["metadata"]
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    for key in CONTROLLER_UID_LABELS:
        labels.setdefault(key, meta["uid"])
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, meta["name"])
    selector = spec.get("selector") if isinstance(spec.get("selector"), dict) else {}
    selector.setdefault("matchLabels", {}).setdefault("batch.kubernetes.io/controller-uid", meta["uid"])
    spec["selector"] = selector


def _pvc_defaults(obj: dict[str, Any], spec: Any) -> None:
    """core/v1 SetDefaults_PersistentVolumeClaimSpec (volumeMode Filesystem) and a new claim's Pending phase."""
    if isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
    obj["status"] = {"phase": "Pending"}


def _pv_defaults(obj: dict[str, Any], spec: Any) -> None:
    """core/v1 SetDefaults_PersistentVolume: reclaim policy Retain, Filesystem; a new volume is Pending."""
    if isinstance(spec, dict):
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")
    obj["status"] = {"phase": "Pending"}


def _storage_class_defaults(obj: dict[str, Any], spec: Any) -> None:
    """storage/v1 SetDefaults_StorageClass: reclaimPolicy Delete, volumeBindingMode Immediate."""
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _secret_defaults(obj: dict[str, Any], spec: Any) -> None:
    obj.setdefault("type", "Opaque")


_CREATE_DEFAULTS = {
    ("", "Namespace"): _namespace_defaults,
    ("", "Pod"): _pod_defaults,
    ("apps", "Deployment"): _workload_defaults,
    ("apps", "ReplicaSet"): _workload_defaults,
    ("apps", "StatefulSet"): _workload_defaults,
    ("", "Service"): _service_defaults,
    ("batch", "Job"): _job_defaults,
    ("", "Secret"): _secret_defaults,
    ("", "PersistentVolumeClaim"): _pvc_defaults,
    ("", "PersistentVolume"): _pv_defaults,
    ("storage.k8s.io", "StorageClass"): _storage_class_defaults,
}


def apply_create_defaults(obj: dict[str, Any], rt: ResourceType) -> None:
    """The few defaults and create-time status resets kube-apiserver's strategies apply."""
    default_templates(obj, rt)
    defaults = _CREATE_DEFAULTS.get((rt.group, rt.kind))
    if defaults is not None:
        defaults(obj, obj.get("spec"))
    elif rt.crd and rt.has("status"):
        obj.pop("status", None)


def default_templates(obj: dict[str, Any], rt: ResourceType) -> None:
    """Defaults applied on every write: pod spec defaults for Pods and workload templates, and the
    ``kubernetes.io/metadata.name`` label every Namespace carries."""
    if rt.group == "" and rt.kind == "Namespace":
        meta = obj["metadata"]
        meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": meta["name"]}
    spec = obj.get("spec")
    if rt.group == "" and rt.kind == "Pod":
        default_pod_spec(spec)
    elif isinstance(spec, dict) and rt.group in ("apps", "batch") and isinstance(spec.get("template"), dict):
        default_pod_spec(spec["template"].get("spec"))


def default_pod_spec(spec: Any) -> None:
    """Container defaults every pod spec (and pod template) gets from kube-apiserver."""
    if not isinstance(spec, dict):
        return
    for field in ("containers", "initContainers"):
        for c in spec.get(field) or []:
            if not isinstance(c, dict):
                continue
            image = str(c.get("image", ""))
            tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
            if not c.get("imagePullPolicy"):
                c["imagePullPolicy"] = "IfNotPresent" if tagged and not image.endswith(":latest") else "Always"
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            for port in c.get("ports") or []:
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"


def _qos_class(spec: Any) -> str:
    containers = (spec or {}).get("containers") or [] if isinstance(spec, dict) else []
    requests = limits = 0
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") or {} if isinstance(c, dict) else {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        requests += len(req)
        limits += len(lim)
        if not lim or not all(k in lim for k in ("cpu", "memory")) or any(req.get(k, lim[k]) != lim[k] for k in lim):
            guaranteed = False
    if guaranteed:
        return "Guaranteed"
    return "Burstable" if requests or limits else "BestEffort"
