"""Embedded schemas in CRD files, filled in from maintained sources instead of typed by hand.

A CRD property written as ``{x-llmd-lab-schema: <source>}`` is replaced, when the CRD is loaded, by:

* ``io.k8s.api.core.v1.PodSpec`` (any ``io.k8s.…`` definition): the Kubernetes OpenAPI definition that
  ``kubernetes-validate`` ships for the lab's Kubernetes minor, turned into a structural CRD schema the way
  controller-gen renders Go types (``$ref`` inlined, ``null`` dropped from types, ``IntOrString`` and
  ``Quantity`` as ``x-kubernetes-int-or-string``, ``ObjectMeta`` a bare object, descriptions and defaults
  dropped (kubernetes-validate carries no defaults), ``required`` kept below the top);
* ``crd:<plural.group>/<version>#spec``: the ``spec`` schema of another CRD this package ships (an HTTPRoute or
  InferencePool spec embedded in an LLMInferenceService), with its ``required`` list.

Mirrors red-hat-data-services/kserve@rhoai-3.0 config/crd/full/serving.kserve.io_llminferenceservices.yaml, which
embeds the full PodSpec under template/worker/prefill.*/router.scheduler.template and drops PodSpec's own
top-level ``required: [containers]`` (presets supply the containers).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

MARKER = "x-llmd-lab-schema"
KUBERNETES_SCHEMA = "v1.33.0-local-strict"  # KServe rhoai-3.0 builds its CRD from k8s.io/api v0.33 (stopSignal)
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"  # controller-gen embeds it as a bare object
QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)"
                    r"|(\.[0-9]+))))?$")
_KEPT = ("format", "enum", "required", "minimum", "maximum", "pattern", "x-kubernetes-list-type",
         "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-preserve-unknown-fields")


@cache
def _definitions() -> dict[str, Any]:
    root = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema", KUBERNETES_SCHEMA)
    return json.loads(root.joinpath("_definitions.json").read_text(encoding="utf-8"))["$defs"]


def _type(value: Any) -> str | None:
    types = [t for t in (value if isinstance(value, list) else [value]) if t and t != "null"]
    return types[0] if len(types) == 1 else None


def _structural(node: dict[str, Any], stack: tuple[str, ...]) -> dict[str, Any]:
    if "$ref" in node:
        return _definition(node["$ref"].rsplit("/", 1)[-1], stack)
    if "oneOf" in node:  # IntOrString/Quantity written inline
        return {"x-kubernetes-int-or-string": True}
    out: dict[str, Any] = {}
    if _type(node.get("type")):
        out["type"] = _type(node.get("type"))
    for key in _KEPT:
        if key in node:
            out[key] = [v for v in node[key] if v is not None] if key == "enum" else node[key]
    if "properties" in node:
        out["properties"] = {k: _structural(v, stack) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = _structural(node["items"], stack)
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(node["additionalProperties"], stack)
    return out


def _definition(name: str, stack: tuple[str, ...] = ()) -> dict[str, Any]:
    if name == QUANTITY:
        return {"anyOf": [{"type": "integer"}, {"type": "string"}], "pattern": QUANTITY_PATTERN,
                "x-kubernetes-int-or-string": True}
    if name == INT_OR_STRING:
        return {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
    if name == OBJECT_META:
        return {"type": "object"}
    if name in stack:  # a recursive type: controller-gen stops the same way
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return _structural(_definitions()[name], (*stack, name))


@cache
def kubernetes_schema(name: str) -> dict[str, Any]:
    """The structural schema of Kubernetes definition ``name`` (its own top-level ``required`` dropped)."""
    schema = _definition(name)
    schema.pop("required", None)
    return schema


def _crd_spec(source: str, load_crd: Callable[[str], dict]) -> dict[str, Any]:
    ref, _, path = source.removeprefix("crd:").partition("#")
    crd_name, _, version = ref.partition("/")
    for v in load_crd(crd_name)["spec"]["versions"]:
        if v["name"] == version:
            node = v["schema"]["openAPIV3Schema"]
            for part in path.split("."):
                node = node["properties"][part]
            return json.loads(json.dumps(node))
    raise KeyError(f"CRD {crd_name} has no version {version!r} (embedded as {source!r})")


def expand(node: Any, load_crd: Callable[[str], dict]) -> Any:
    """A copy of ``node`` with every ``x-llmd-lab-schema`` marker replaced by its schema; the marker's other keys
    (``description``, a ``required`` list the embedding type states) override the source's."""
    if isinstance(node, list):
        return [expand(v, load_crd) for v in node]
    if not isinstance(node, dict):
        return node
    if MARKER in node:
        source = node[MARKER]
        schema = _crd_spec(source, load_crd) if source.startswith("crd:") else json.loads(
            json.dumps(kubernetes_schema(source)))
        schema.update({k: v for k, v in node.items() if k != MARKER})  # description, or a stricter ``required``
        return schema
    return {k: expand(v, load_crd) for k, v in node.items()}
