"""kube-apiserver's built-in validation for the kinds learners and the kit create, beyond the OpenAPI schema.

Each rule and its wording follow kubernetes@v1.32 (files cited per validator):
pkg/apis/core/validation/validation.go, pkg/apis/apps/validation/validation.go,
pkg/apis/batch/validation/validation.go, pkg/apis/rbac/validation/validation.go,
staging/src/k8s.io/apimachinery/pkg/api/validation/objectmeta.go and
staging/src/k8s.io/apimachinery/pkg/util/validation/{validation.go,field/errors.go}.
Causes render the way ``field.Error`` does (``Invalid value: <value>: <detail>``, Go ``%#v`` for maps).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

from llmd_lab.lab.apiserver import quantity
from llmd_lab.lab.apiserver import selectors as sel
from llmd_lab.lab.apiserver.registry import ResourceType

Cause = dict[str, str]
MAX_CONFIG_BYTES = 1024 * 1024  # core.MaxSecretSize, also the ConfigMap limit
MAX_ANNOTATION_BYTES = 256 * 1024  # apimachinery TotalAnnotationSizeLimitB
NEGATIVE = "must be greater than or equal to 0"
PORT_RANGE = "must be between 1 and 65535, inclusive"
IMMUTABLE = "field is immutable"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PORT_NAME = re.compile(r"^[-a-z0-9]+$")
DNS_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                 "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
QUALIFIED_NAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                      "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                      "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
PREFIX_MSG = ("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
              "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
              "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


# ---------------------------------------------------------------------- field.Error rendering
def go_value(value: Any) -> str:
    """A bad value as field.Error's ErrorBody prints it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        items = ", ".join(f"{json.dumps(k)}:{json.dumps(value[k])}" for k in sorted(value))
        return f"map[string]string{{{items}}}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(json.dumps(v) for v in value) + "}"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return {"field": field, "message": f"Invalid value: {go_value(value)}: {detail}", "reason": "FieldValueInvalid"}


def required(field: str, detail: str = "") -> Cause:
    return {"field": field, "message": "Required value" + (f": {detail}" if detail else ""),
            "reason": "FieldValueRequired"}


def not_supported(field: str, value: Any, allowed: list[str]) -> Cause:
    quoted = ", ".join(json.dumps(a) for a in allowed)
    return {"field": field, "message": f"Unsupported value: {go_value(value)}: supported values: {quoted}",
            "reason": "FieldValueNotSupported"}


def too_long(field: str, limit: int) -> Cause:
    return {"field": field, "message": f"Too long: must have at most {limit} bytes", "reason": "FieldValueTooLong"}


def duplicate(field: str, value: Any) -> Cause:
    return {"field": field, "message": f"Duplicate value: {go_value(value)}", "reason": "FieldValueDuplicate"}


def _d(value: Any) -> dict:
    """``value`` if it is an object, else empty (the schema reports the wrong type; rules skip it)."""
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[tuple[int, dict]]:
    return [(i, item) for i, item in enumerate(_l(value)) if isinstance(item, dict)]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def nonnegative(obj: dict, key: str, path: str) -> list[Cause]:
    """apimachinery ValidateNonnegativeField."""
    value = _int(obj.get(key))
    return [invalid(f"{path}.{key}", value, NEGATIVE)] if value is not None and value < 0 else []


def port_causes(value: Any, path: str) -> list[Cause]:
    """util/validation IsValidPortNum."""
    number = _int(value)
    return [invalid(path, number, PORT_RANGE)] if number is not None and not 1 <= number <= 65535 else []


def port_name_causes(name: str, path: str) -> list[Cause]:
    """util/validation IsValidPortName."""
    msgs = []
    if len(name) > 15:
        msgs.append("must be no more than 15 characters")
    if not _PORT_NAME.match(name):
        msgs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in name:
        msgs.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        msgs.append("must not begin or end with a hyphen")
    if not re.search(r"[a-z]", name):
        msgs.append("must contain at least one letter (a-z)")
    return [invalid(path, name, m) for m in msgs]


def qualified_name_causes(value: str, path: str) -> list[Cause]:
    """util/validation IsQualifiedName (finalizers, label and annotation keys)."""
    prefix, slash, name = value.rpartition("/")
    if slash and not prefix:
        return [invalid(path, value, "prefix part must be non-empty")]
    msgs = []
    if not name:
        msgs.append("name part must be non-empty")
    elif len(name) > 63:
        msgs.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME.match(name):
        msgs.append(QUALIFIED_NAME_MSG)
    if prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        msgs.append(PREFIX_MSG)
    return [invalid(path, value, m) for m in msgs]


# ---------------------------------------------------------------------- ObjectMeta (apimachinery objectmeta.go)
def meta_causes(meta: dict) -> list[Cause]:
    annotations = _d(meta.get("annotations"))
    causes = []
    if sum(len(k) + len(str(v)) for k, v in annotations.items()) > MAX_ANNOTATION_BYTES:
        causes.append(too_long("metadata.annotations", MAX_ANNOTATION_BYTES))
    for i, finalizer in enumerate(_l(meta.get("finalizers"))):
        causes += qualified_name_causes(finalizer, f"metadata.finalizers[{i}]")
    return causes


# ---------------------------------------------------------------------- pods (core validation.go)
def _container_causes(ctr: dict, path: str, names: set[str]) -> list[Cause]:
    causes = []
    name = ctr.get("name") or ""
    if not name:
        causes.append(required(f"{path}.name"))
    elif not _DNS_LABEL.match(name) or len(name) > 63:
        causes.append(invalid(f"{path}.name", name, DNS_LABEL_MSG))
    elif name in names:
        causes.append(duplicate(f"{path}.name", name))
    names.add(name)
    if not ctr.get("image"):
        causes.append(required(f"{path}.image"))
    for i, port in _dicts(ctr.get("ports")):
        causes += _container_port_causes(port, f"{path}.ports[{i}]")
    causes += _resource_causes(_d(ctr.get("resources")), f"{path}.resources")
    return causes


def _container_port_causes(port: dict, path: str) -> list[Cause]:
    causes = []
    if not port.get("containerPort"):
        causes.append(required(f"{path}.containerPort"))
    else:
        causes += port_causes(port["containerPort"], f"{path}.containerPort")
    if port.get("hostPort"):
        causes += port_causes(port["hostPort"], f"{path}.hostPort")
    protocol = port.get("protocol", "TCP")
    if protocol not in ("SCTP", "TCP", "UDP"):
        causes.append(not_supported(f"{path}.protocol", protocol, ["SCTP", "TCP", "UDP"]))
    return causes


def _resource_causes(resources: dict, path: str) -> list[Cause]:
    """ValidateResourceRequirements: quantities non-negative, each request at most its limit."""
    causes = []
    values: dict[str, dict[str, float]] = {}
    for part in ("limits", "requests"):
        for name, text in _d(resources.get(part)).items():
            value = quantity.parse(text)
            values.setdefault(part, {})[name] = value
            if value < 0:
                causes.append(invalid(f"{path}.{part}[{name}]", str(text), NEGATIVE))
    for name, request in values.get("requests", {}).items():
        limit = values.get("limits", {}).get(name)
        if limit is not None and request > limit:
            causes.append(invalid(f"{path}.requests", str(resources["requests"][name]),
                                  f"must be less than or equal to {name} limit of {resources['limits'][name]}"))
    return causes


def pod_spec_causes(spec: Any, path: str, restart_policies: tuple[str, ...] = ("Always", "OnFailure", "Never")
                    ) -> list[Cause]:
    spec = spec if isinstance(spec, dict) else {}  # PodSpec is a struct: absent means empty
    causes = []
    containers = _l(spec.get("containers"))
    if not containers:
        causes.append(required(f"{path}.containers"))
    names: set[str] = set()
    for kind in ("initContainers", "containers"):
        for i, ctr in _dicts(spec.get(kind)):
            causes += _container_causes(ctr, f"{path}.{kind}[{i}]", names)
    policy = spec.get("restartPolicy", "Always")  # SetDefaults_PodSpec
    if policy not in restart_policies:
        causes.append(not_supported(f"{path}.restartPolicy", policy, list(restart_policies)))
    causes += nonnegative(spec, "terminationGracePeriodSeconds", path)
    return causes


def _pod(obj: dict, old: dict | None) -> list[Cause]:
    return pod_spec_causes(obj.get("spec"), "spec")


# ---------------------------------------------------------------------- apps (apps validation.go)
def _label_selector(selector: Any) -> tuple[dict[str, str], list[dict]]:
    selector = selector if isinstance(selector, dict) else {}
    return _d(selector.get("matchLabels")), _l(selector.get("matchExpressions"))


def selector_causes(selector: Any, path: str) -> list[Cause]:
    """metav1 validation ValidateLabelSelectorRequirement (apimachinery pkg/apis/meta/v1/validation)."""
    causes = []
    for i, expr in enumerate(_label_selector(selector)[1]):
        where = f"{path}.matchExpressions[{i}]"
        expr = _d(expr)
        op, values = expr.get("operator"), _l(expr.get("values"))
        if not expr.get("key"):
            causes.append(invalid(f"{where}.key", expr.get("key") or "", "name part must be non-empty"))
        if op in ("In", "NotIn") and not values:
            causes.append(required(f"{where}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and values:
            causes.append({"field": f"{where}.values", "message": "Forbidden: may not be specified when `operator` "
                           "is 'Exists' or 'DoesNotExist'", "reason": "FieldValueForbidden"})
        elif op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            causes.append(invalid(f"{where}.operator", op or "", "not a valid selector operator"))
    return causes


def _selects(selector: Any, labels: dict[str, str]) -> bool:
    return sel.labels_match(sel.selector_from_match(selector), {"metadata": {"labels": labels}})


def selector_value(selector: Any) -> str:
    """A LabelSelector as field.Error prints the Go struct (``%#v`` of v1.LabelSelector)."""
    match_labels, expressions = _label_selector(selector)
    labels = go_value(match_labels) if match_labels else "map[string]string(nil)"
    exprs = "[]v1.LabelSelectorRequirement(nil)" if not expressions else (
        "[]v1.LabelSelectorRequirement{" + ", ".join(
            f'v1.LabelSelectorRequirement{{Key:{json.dumps(e.get("key", ""))}, '
            f'Operator:{json.dumps(e.get("operator", ""))}, Values:{go_value(_l(e.get("values")))}}}'
            for e in map(_d, expressions)) + "}")
    return f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}"


def _workload(obj: dict, old: dict | None) -> list[Cause]:
    spec = _d(obj.get("spec"))
    causes = nonnegative(spec, "replicas", "spec")
    causes += nonnegative(spec, "minReadySeconds", "spec") + nonnegative(spec, "revisionHistoryLimit", "spec")
    selector = spec.get("selector")
    template = _d(spec.get("template"))
    labels = _d(_d(template.get("metadata")).get("labels"))
    match_labels, expressions = _label_selector(selector)
    if selector is None:
        causes.append(required("spec.selector"))
    elif not match_labels and not expressions:
        which = "statefulset" if obj.get("kind") == "StatefulSet" else "deployment"
        causes.append({"field": "spec.selector", "message": f"Invalid value: {selector_value(selector)}: "
                       f"empty selector is invalid for {which}", "reason": "FieldValueInvalid"})
    elif selector_causes(selector, "spec.selector"):
        causes += selector_causes(selector, "spec.selector")
    elif not _selects(selector, labels):
        causes.append(invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"))
    causes += pod_spec_causes(template.get("spec"), "spec.template.spec", ("Always",))
    if old is not None and selector != _d(old.get("spec")).get("selector"):
        causes.append({"field": "spec.selector", "message": f"Invalid value: {selector_value(selector)}: {IMMUTABLE}",
                       "reason": "FieldValueInvalid"})
    return causes


# ---------------------------------------------------------------------- batch (batch validation.go)
def _job(obj: dict, old: dict | None) -> list[Cause]:
    spec = _d(obj.get("spec"))
    causes = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit"):
        causes += nonnegative(spec, key, "spec")
    template = _d(spec.get("template"))
    causes += pod_spec_causes(template.get("spec"), "spec.template.spec", ("OnFailure", "Never"))
    return causes


# ---------------------------------------------------------------------- services (core validation.go)
SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def _service(obj: dict, old: dict | None) -> list[Cause]:
    spec = _d(obj.get("spec"))
    kind = spec.get("type", "ClusterIP")
    causes = [] if kind in SERVICE_TYPES else [not_supported("spec.type", kind, SERVICE_TYPES)]
    ports = _l(spec.get("ports"))
    if not ports and spec.get("clusterIP") != "None" and kind != "ExternalName":
        causes.append(required("spec.ports"))
    names: set[str] = set()
    for i, port in _dicts(ports):
        causes += _service_port_causes(port, f"spec.ports[{i}]", len(ports) > 1, names)
    ip = spec.get("clusterIP") or ""
    if ip not in ("", "None"):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            causes.append(invalid("spec.clusterIPs[0]", ip, "must be a valid IP address, (e.g. 10.9.8.7 or "
                                  "2001:db8::ffff)"))
    old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
    if old_ip and ip != old_ip:
        causes.append(invalid("spec.clusterIPs[0]", spec.get("clusterIPs") or [ip], "may not change once set"))
    return causes


def _service_port_causes(port: dict, path: str, require_name: bool, names: set[str]) -> list[Cause]:
    causes = []
    name = port.get("name") or ""
    if require_name and not name:
        causes.append(required(f"{path}.name"))
    elif name:
        causes += [invalid(f"{path}.name", name, DNS_LABEL_MSG)] if not _DNS_LABEL.match(name) else []
        if name in names:
            causes.append(duplicate(f"{path}.name", name))
        names.add(name)
    causes += port_causes(port.get("port"), f"{path}.port")
    protocol = port.get("protocol", "TCP")
    if protocol not in ("SCTP", "TCP", "UDP"):
        causes.append(not_supported(f"{path}.protocol", protocol, ["SCTP", "TCP", "UDP"]))
    target = port.get("targetPort")
    if isinstance(target, str):
        causes += port_name_causes(target, f"{path}.targetPort")
    else:
        causes += port_causes(target, f"{path}.targetPort")
    return causes


# ---------------------------------------------------------------------- ConfigMap / Secret (core validation.go)
def _key_causes(data: dict, path: str) -> list[Cause]:
    """IsConfigMapKey for every key."""
    causes = []
    for key in data:
        if not _CONFIG_KEY.match(key):
            causes.append(invalid(f"{path}[{key}]", key, CONFIG_KEY_MSG))
        elif key in (".", "..") or key.startswith(".."):
            detail = "must not start with '..'" if key.startswith("..") and key != ".." else f"must not be '{key}'"
            causes.append(invalid(f"{path}[{key}]", key, detail))
        elif len(key) > 253:
            causes.append(invalid(f"{path}[{key}]", key, "must be no more than 253 characters"))
    return causes


def _config_map(obj: dict, old: dict | None) -> list[Cause]:
    data, binary = _d(obj.get("data")), _d(obj.get("binaryData"))
    causes = _key_causes(data, "data") + _key_causes(binary, "binaryData")
    causes += [invalid(f"data[{k}]", k, "duplicate of key present in binaryData") for k in data if k in binary]
    size = sum(len(v.encode()) for v in data.values() if isinstance(v, str))
    size += sum(len(v) * 3 // 4 for v in binary.values() if isinstance(v, str))
    if size > MAX_CONFIG_BYTES:
        causes.append(too_long("[]", MAX_CONFIG_BYTES))
    return causes + _immutable_data(obj, old)


def _immutable_data(obj: dict, old: dict | None) -> list[Cause]:
    if not old or not old.get("immutable"):
        return []
    causes = []
    for key in ("data", "binaryData", "stringData"):
        if key in old or key in obj:
            if obj.get(key) != old.get(key):
                causes.append({"field": key, "message": "Forbidden: field is immutable when `immutable` is set",
                               "reason": "FieldValueForbidden"})
    if not obj.get("immutable"):
        causes.append({"field": "immutable", "message": "Forbidden: field is immutable when `immutable` is set",
                       "reason": "FieldValueForbidden"})
    return causes


def _secret(obj: dict, old: dict | None) -> list[Cause]:
    data = _d(obj.get("data"))
    causes = _key_causes(data, "data")
    if sum(len(v) * 3 // 4 for v in data.values() if isinstance(v, str)) > MAX_CONFIG_BYTES:
        causes.append(too_long("data", MAX_CONFIG_BYTES))
    if old is not None and obj.get("type") != old.get("type"):
        causes.append(invalid("type", obj.get("type"), IMMUTABLE))
    return causes + _immutable_data(obj, old)


# ---------------------------------------------------------------------- RBAC (rbac validation.go)
RBAC_GROUP = "rbac.authorization.k8s.io"


def _rules(obj: dict, old: dict | None) -> list[Cause]:
    causes = []
    for i, rule in _dicts(obj.get("rules")):
        path = f"rules[{i}]"
        if not rule.get("verbs"):
            causes.append(required(f"{path}.verbs", "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            continue
        if not rule.get("apiGroups"):
            causes.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            causes.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def _binding(obj: dict, old: dict | None) -> list[Cause]:
    ref = _d(obj.get("roleRef"))
    kinds = ["Role", "ClusterRole"] if obj.get("kind") == "RoleBinding" else ["ClusterRole"]
    causes = []
    if ref.get("apiGroup") != RBAC_GROUP:
        causes.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC_GROUP]))
    if ref.get("kind") not in kinds:
        causes.append(not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        causes.append(required("roleRef.name"))
    for i, subject in _dicts(obj.get("subjects")):
        causes += _subject_causes(subject, f"subjects[{i}]", obj.get("kind") == "RoleBinding")
    if old is not None and ref != _d(old.get("roleRef")):
        causes.append({"field": "roleRef", "message": f"Invalid value: {go_value(ref)}: cannot change roleRef",
                       "reason": "FieldValueInvalid"})
    return causes


def _subject_causes(subject: dict, path: str, namespaced: bool) -> list[Cause]:
    kind, name, group = subject.get("kind"), subject.get("name") or "", subject.get("apiGroup") or ""
    causes = [] if name else [required(f"{path}.name")]
    if kind == "ServiceAccount":
        if group:
            causes.append(not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            causes.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            causes.append(not_supported(f"{path}.apiGroup", group, [RBAC_GROUP]))
    else:
        causes.append(not_supported(f"{path}.kind", kind or "", ["ServiceAccount", "User", "Group"]))
    return causes


# ---------------------------------------------------------------------- dispatch
Validator = Callable[[dict, dict | None], list[Cause]]
VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): _pod,
    ("apps", "Deployment"): _workload,
    ("apps", "ReplicaSet"): _workload,
    ("apps", "StatefulSet"): _workload,
    ("batch", "Job"): _job,
    ("", "Service"): _service,
    ("", "ConfigMap"): _config_map,
    ("", "Secret"): _secret,
    (RBAC_GROUP, "Role"): _rules,
    (RBAC_GROUP, "ClusterRole"): _rules,
    (RBAC_GROUP, "RoleBinding"): _binding,
    (RBAC_GROUP, "ClusterRoleBinding"): _binding,
}


def causes(obj: dict, rt: ResourceType, old: dict | None) -> list[Cause]:
    """Every built-in rule ``obj`` breaks (``old``: the stored object on update); ObjectMeta for every kind."""
    found = meta_causes(_d(obj.get("metadata")))
    validator = VALIDATORS.get(rt.group_kind) if not rt.crd else None
    if validator is not None:
        found += validator(obj, old)
    return found
