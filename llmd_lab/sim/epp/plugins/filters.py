"""Filters (llm-d-inference-scheduler v0.3.1 ``pkg/plugins/filter``): drop endpoints by pod label."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from llmd_lab.sim.epp.plugins.base import ConfigError, Filter, PluginHandle, decode_parameters, register
from llmd_lab.sim.epp.types import Endpoint

ROLE_LABEL = "llm-d.ai/role"


@register("by-label")
class ByLabel(Filter):
    """Keep a pod iff ``labels[label] ∈ validValues``, or the label is absent and ``allowsNoLabel``."""

    PARAMS: ClassVar[dict[str, tuple[str, Any]]] = {
        "label": ("str", ""),
        "validValues": ("strlist", []),
        "allowsNoLabel": ("bool", False),
    }

    def __init__(self, name: str, label: str, valid_values: list[str], allows_no_label: bool) -> None:
        super().__init__(name)
        self.label = label
        self.valid_values = set(valid_values)
        self.allows_no_label = allows_no_label

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> ByLabel:
        p = decode_parameters(name, cls.type_name, params, cls.PARAMS)
        if not p["label"]:
            raise ConfigError(f"plugin '{name}' (type {cls.type_name}): parameter 'label' is required")
        if not p["validValues"] and not p["allowsNoLabel"]:
            raise ConfigError(
                f"plugin '{name}' (type {cls.type_name}): set 'validValues' or 'allowsNoLabel', or it drops every pod"
            )
        return cls(name, p["label"], p["validValues"], p["allowsNoLabel"])

    def filter(self, state, request, endpoints: list[Endpoint]) -> list[Endpoint]:
        out = []
        for ep in endpoints:
            value = ep.labels.get(self.label)
            if (value is None and self.allows_no_label) or (value is not None and value in self.valid_values):
                out.append(ep)
        return out


@register("decode-filter")
class DecodeFilter(ByLabel):
    """Pods labelled ``llm-d.ai/role`` decode or both, or not labelled at all."""

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> DecodeFilter:
        decode_parameters(name, cls.type_name, params, {})
        return cls(name, ROLE_LABEL, ["decode", "both"], True)


@register("prefill-filter")
class PrefillFilter(ByLabel):
    """Only pods labelled ``llm-d.ai/role=prefill``."""

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> PrefillFilter:
        decode_parameters(name, cls.type_name, params, {})
        return cls(name, ROLE_LABEL, ["prefill"], False)


_OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist"}


@register("by-label-selector")
class ByLabelSelector(Filter):
    """Keep pods matching a Kubernetes ``LabelSelector`` (``matchLabels`` AND ``matchExpressions``)."""

    def __init__(self, name: str, match_labels: dict[str, str], expressions: list[dict[str, Any]]) -> None:
        super().__init__(name)
        self.match_labels = match_labels
        self.expressions = expressions

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> ByLabelSelector:
        p = _decode_selector(name, params)
        return cls(name, p["matchLabels"], p["matchExpressions"])

    def _matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for expr in self.expressions:
            key, op, values = expr["key"], expr["operator"], expr.get("values") or []
            if op == "In" and labels.get(key) not in values:
                return False
            if op == "NotIn" and key in labels and labels[key] in values:
                return False
            if op == "Exists" and key not in labels:
                return False
            if op == "DoesNotExist" and key in labels:
                return False
        return True

    def filter(self, state, request, endpoints: list[Endpoint]) -> list[Endpoint]:
        return [ep for ep in endpoints if self._matches(ep.labels)]


def _decode_selector(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    where = f"plugin '{name}' (type by-label-selector)"
    params = params or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where}: parameters must be a LabelSelector mapping")
    # other keys are ignored, as json.Unmarshal into a metav1.LabelSelector ignores them
    labels = params.get("matchLabels") or {}
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        raise ConfigError(f"{where}: bad parameter 'matchLabels': expected a mapping of strings")
    expressions = params.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise ConfigError(f"{where}: bad parameter 'matchExpressions': expected a list")
    for i, expr in enumerate(expressions):
        if not isinstance(expr, Mapping) or not isinstance(expr.get("key"), str) or expr.get("operator") not in _OPERATORS:
            raise ConfigError(
                f"{where}: bad parameter 'matchExpressions[{i}]': needs 'key' and an operator in {sorted(_OPERATORS)}"
            )
        if expr["operator"] in {"In", "NotIn"} and not expr.get("values"):
            raise ConfigError(f"{where}: bad parameter 'matchExpressions[{i}]': operator {expr['operator']} needs values")
    if not labels and not expressions:
        raise ConfigError(f"{where}: an empty selector is not allowed (set matchLabels or matchExpressions)")
    return {"matchLabels": dict(labels), "matchExpressions": [dict(e) for e in expressions]}
