"""Label and field selectors, parsed once and matched many times (the grammar of apimachinery's ``labels``).

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x,y)``, ``a`` (exists), ``!a``
(does not exist), ``a>1`` / ``a<1``. Field selectors: ``f=v``, ``f==v``, ``f!=v`` over the fields each kind
supports; anything else is a 400 that names the bad term, as kube-apiserver does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmd_lab.lab.apiserver import errors

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_TERM = re.compile(r"^\s*(!)?\s*([^\s!=<>(),]+)\s*(?:(==|=|!=|<|>)\s*([^\s,()]*)|\s(in|notin)\s*\(([^)]*)\))?\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "<", ">"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "notin":
            return not has or value not in self.values
        if self.op in ("<", ">"):
            try:
                lhs, rhs = int(value or ""), int(self.values[0])
            except ValueError:
                return False
            return lhs < rhs if self.op == "<" else lhs > rhs
        return False


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    terms, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return terms


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a label selector string; an empty or missing selector matches everything."""
    if text is None or not text.strip():
        return []
    reqs = []
    for term in _split_terms(text):
        if not term.strip():
            raise errors.bad_request(f"unable to parse requirement: found empty term in label selector {text!r}")
        m = _TERM.match(term)
        if not m:
            raise errors.bad_request(
                f"unable to parse requirement: {term.strip()!r} is not a valid label selector term "
                "(use key=value, key!=value, key in (a,b), key notin (a,b), key or !key)"
            )
        bang, key, op, value, set_op, set_values = m.groups()
        if not _KEY.match(key) or len(key.rpartition("/")[2]) > 63:
            raise errors.bad_request(
                f"unable to parse requirement: invalid label key {key!r}: name part must consist of alphanumeric "
                "characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            )
        if bang:
            if op or set_op:
                raise errors.bad_request(f"unable to parse requirement: {term.strip()!r}: '!' takes a bare key")
            reqs.append(Requirement(key, "!"))
        elif op:
            _check_value(value, term)
            reqs.append(Requirement(key, "=" if op in ("=", "==") else op, (value,)))
        elif set_op:
            values = tuple(v.strip() for v in set_values.split(",")) if set_values.strip() else ()
            if not values:
                raise errors.bad_request(f"unable to parse requirement: {term.strip()!r}: for 'in', 'notin' operators, values set can't be empty")
            for v in values:
                _check_value(v, term)
            reqs.append(Requirement(key, set_op, values))
        else:
            reqs.append(Requirement(key, "exists"))
    return reqs


def _check_value(value: str, term: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise errors.bad_request(
            f"unable to parse requirement: invalid label value {value!r} in {term.strip()!r}: must be 63 characters "
            "or less and consist of alphanumeric characters, '-', '_' or '.'"
        )


def labels_match(reqs: list[Requirement], obj: Mapping[str, Any]) -> bool:
    if not reqs:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


def selector_from_match(selector: Mapping[str, Any] | None) -> list[Requirement]:
    """A ``LabelSelector`` object (matchLabels + matchExpressions) as requirements."""
    if not selector:
        return []
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        reqs.append(Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ())))
    return reqs


def format_selector(selector: Mapping[str, Any] | None) -> str:
    """``{matchLabels: {a: b}}`` → ``a=b`` (what Scale.status.selector carries)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], ",".join(expr.get("values") or ())
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key,
                      "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)


# ---- field selectors
def _path(*keys: str) -> Callable[[Mapping[str, Any]], str]:
    def get(obj: Mapping[str, Any]) -> str:
        cur: Any = obj
        for k in keys:
            if not isinstance(cur, Mapping):
                return ""
            cur = cur.get(k)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


_COMMON = {"metadata.name": _path("metadata", "name"), "metadata.namespace": _path("metadata", "namespace")}
_EVENT = {
    **{f"involvedObject.{f}": _path("involvedObject", f)
       for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reason": _path("reason"),
    "reportingComponent": _path("reportingComponent"),
    "source": _path("source", "component"),
    "type": _path("type"),
}
_EVENT_V1 = {
    **{f"regarding.{f}": _path("regarding", f) for f in ("kind", "namespace", "name", "uid", "apiVersion")},
    "reason": _path("reason"),
    "type": _path("type"),
    "reportingController": _path("reportingController"),
}
FIELDS: dict[tuple[str, str], dict[str, Callable[[Mapping[str, Any]], str]]] = {
    ("", "Pod"): {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    ("", "Event"): _EVENT,
    ("events.k8s.io", "Event"): {**_EVENT, **_EVENT_V1},
    ("", "Node"): {"spec.unschedulable": _path("spec", "unschedulable")},
    ("", "Namespace"): {"status.phase": _path("status", "phase")},
    ("", "Secret"): {"type": _path("type")},
    ("apps", "ReplicaSet"): {"status.replicas": _path("status", "replicas")},
    ("batch", "Job"): {"status.successful": _path("status", "succeeded")},
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str
    getter: Callable[[Mapping[str, Any]], str]

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (self.getter(obj) == self.value) == self.equal


def parse_field_selector(text: str | None, group: str, kind: str) -> list[FieldRequirement]:
    """Parse a field selector for one kind; unsupported fields are a 400 naming the field."""
    if text is None or not text.strip():
        return []
    supported = {**_COMMON, **FIELDS.get((group, kind), {})}
    reqs = []
    for term in text.split(","):
        term = term.strip()
        m = re.match(r"^([^=!]+?)\s*(==|=|!=)\s*(.*)$", term)
        if not m:
            raise errors.bad_request(
                f"invalid selector: {term!r}; a field selector term is field=value, field==value or field!=value"
            )
        name, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        getter = supported.get(name)
        if getter is None:
            raise errors.bad_request(
                f'field label not supported: {name} (for {kind} the supported fields are: {", ".join(sorted(supported))})'
            )
        reqs.append(FieldRequirement(name, op != "!=", value, getter))
    return reqs


def fields_match(reqs: list[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    return all(r.matches(obj) for r in reqs)
