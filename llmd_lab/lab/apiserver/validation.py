"""Schema validation of objects, worded the way kube-apiserver words it.

Built-in kinds are checked against the OpenAPI schemas that the ``kubernetes-validate`` package ships for
Kubernetes 1.32 (offline, no cluster needed); custom resources against their CRD's structural
``openAPIV3Schema``. Each problem becomes a ``Status`` cause whose ``field`` is the JSON path
(``spec.replicas``, ``spec.template.spec.containers[0].name``) and whose message reads like the real one::

    spec.replicas: Invalid value: "two": spec.replicas in body must be of type integer: "string"

``unknown_fields`` lists fields no schema declares, for ``fieldValidation=Strict`` (what ``kubectl apply``
asks for by default); ``prune`` drops them, which is what the API server does otherwise.
Validators are compiled once per kind and cached.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource

from llmd_lab.lab.apiserver.registry import ResourceRegistry, ResourceType

KUBERNETES_VERSION = "1.32.0"
_SCHEMA_DIR = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local"
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

Cause = dict[str, str]


# ------------------------------------------------------------------------------------------------ built-ins
@cache
def builtin_definitions() -> dict[str, Any]:
    """``$defs`` of every Kubernetes 1.32 type, keyed like ``io.k8s.api.core.v1.Pod`` (shared, do not mutate)."""
    path = resources.files("kubernetes_validate").joinpath(_SCHEMA_DIR, "_definitions.json")
    return json.loads(path.read_text(encoding="utf-8"))["$defs"]


@cache
def _builtin_index() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) → definition name, from each type's ``x-kubernetes-group-version-kind``."""
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in builtin_definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
            # io.k8s.api.* beats the apimachinery copies (DeleteOptions/WatchEvent are listed under every group)
            if key not in index or name.startswith("io.k8s.api."):
                index[key] = name
    return index


def builtin_definition_name(group: str, version: str, kind: str) -> str | None:
    """The OpenAPI definition name of a built-in kind, e.g. ``io.k8s.api.apps.v1.Deployment``."""
    return _builtin_index().get((group, version, kind))


@cache
def _builtin_validator(definition: str) -> jsonschema.protocols.Validator:
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": builtin_definitions()}
    registry = Registry().with_resource("urn:k8s", Resource.from_contents(root))
    return jsonschema.Draft202012Validator({"$ref": f"urn:k8s#/$defs/{definition}"}, registry=registry)


# ------------------------------------------------------------------------------------------------ CRDs
def crd_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Translate a CRD's OpenAPI v3.0 schema into JSON Schema (draft 2020-12) for ``jsonschema``.

    ``nullable`` adds ``null`` to the type, boolean ``exclusiveMinimum/Maximum`` become numbers,
    ``x-kubernetes-int-or-string`` accepts either, integer formats ``int32``/``int64`` bound the value (as
    kube-openapi's numberValidator does), and ``metadata`` is left to the ObjectMeta rules.
    """
    converted = _to_json_schema(schema)
    props = converted.setdefault("properties", {})
    props["metadata"] = {"type": "object"}
    return converted


_DROPPED = frozenset({"exclusiveMinimum", "exclusiveMaximum", "default", "example", "x-kubernetes-validations"})
INTEGER_FORMATS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: _to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = _to_json_schema(value)
        elif key == "format":
            if node.get("type") == "integer" and value in INTEGER_FORMATS:
                out["format"] = value  # other formats are advisory in the lab
        elif key not in _DROPPED:  # CEL rules are not evaluated by the lab
            out[key] = value
    return _openapi_flags(node, out)


def _openapi_flags(node: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI v3.0 flags that JSON Schema spells differently."""
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(flag) is True and bound in node:
            out[flag] = out.pop(bound)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    return out


def _integer_format(validator: Any, fmt: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """kube-openapi's IsValueValidAgainstRange: an integer must fit its format's Go type."""
    bounds = INTEGER_FORMATS.get(fmt)
    if bounds and isinstance(instance, int) and not isinstance(instance, bool) \
            and not bounds[0] <= instance <= bounds[1]:
        yield jsonschema.ValidationError(f"integer format {fmt}")


_CRDValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"format": _integer_format})
_crd_cache: dict[tuple[str, str, str], tuple[dict[str, Any], jsonschema.protocols.Validator]] = {}


def _crd_validator(rt: ResourceType) -> jsonschema.protocols.Validator | None:
    if not rt.schema:
        return None
    key = (rt.group, rt.version, rt.kind)
    hit = _crd_cache.get(key)
    if hit is not None and hit[0] is rt.schema:
        return hit[1]
    validator = _CRDValidator(crd_json_schema(rt.schema))
    _crd_cache[key] = (rt.schema, validator)
    return validator


# ------------------------------------------------------------------------------------------------ causes
def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"))[:120]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _cause(error: jsonschema.ValidationError) -> Cause:
    """One jsonschema error as a Kubernetes field cause (field path, message, reason)."""
    field = _path(error.absolute_path)
    where = field or "<root>"
    kind, bound, value = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = next((name for name in bound if isinstance(value, dict) and name not in value), "")
        return {"field": _path([*error.absolute_path, missing]), "message": "Required value",
                "reason": "FieldValueRequired"}
    if kind == "enum":
        allowed = ", ".join(_value(v) for v in bound if v is not None)
        return {"field": field, "message": f"Unsupported value: {_value(value)}: supported values: {allowed}",
                "reason": "FieldValueNotSupported"}
    if kind == "type" or (kind in ("oneOf", "anyOf") and all(e.validator == "type" for e in error.context)):
        wanted = bound if kind == "type" else [e.validator_value for e in error.context]
        names: list[str] = []
        for w in wanted if isinstance(wanted, list) else [wanted]:
            names += [t for t in (w if isinstance(w, list) else [w]) if t != "null" and t not in names]
        text = " or ".join(names)
        return {"field": field,
                "message": f"Invalid value: {_value(value)}: {where} in body must be of type {text}: "
                           f"\"{_json_type(value)}\"",
                "reason": "FieldValueTypeInvalid"}
    if kind == "format" and bound in INTEGER_FORMATS:
        return {"field": field, "message": f"Invalid value: {_value(value)}: Checked value must be of type integer "
                                           f"with format {bound} in {where}", "reason": "FieldValueInvalid"}
    if kind in ("maxItems", "maxProperties"):
        return {"field": field, "message": f"Too many: {len(value)}: must have at most {bound} items",
                "reason": "FieldValueTooMany"}
    if kind == "maxLength":
        return {"field": field, "message": f"Too long: may not be more than {bound} bytes",
                "reason": "FieldValueTooLong"}
    phrases = {
        "minimum": f"should be greater than or equal to {bound}",
        "maximum": f"should be less than or equal to {bound}",
        "exclusiveMinimum": f"should be greater than {bound}",
        "exclusiveMaximum": f"should be less than {bound}",
        "minItems": f"should have at least {bound} items",
        "minProperties": f"should have at least {bound} properties",
        "minLength": f"should be at least {bound} chars long",
        "pattern": f"should match '{bound}'",
    }
    phrase = phrases.get(kind, error.message)
    return {"field": field, "message": f"Invalid value: {_value(value)}: {where} in body {phrase}",
            "reason": "FieldValueInvalid"}


def _schema_errors(obj: dict[str, Any], rt: ResourceType) -> Iterator[jsonschema.ValidationError]:
    if rt.crd:
        validator = _crd_validator(rt)
    else:
        name = builtin_definition_name(rt.group, rt.version, rt.kind)
        validator = _builtin_validator(name) if name else None
    if validator is None:
        return iter(())
    return validator.iter_errors(obj)


def validate_object(obj: dict[str, Any], registry: ResourceRegistry, *, metadata: bool = True) -> list[Cause]:
    """Every schema problem of ``obj`` as ``[{field, message, reason}]``; empty when valid.

    Kinds the registry does not serve are the store's business (404), so they give no causes here. With
    ``metadata`` the name and label rules of ``objectmeta`` are checked too (name optional when
    ``generateName`` is set).
    """
    rt = registry.find_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if rt is None:
        return []
    causes: list[Cause] = []
    if metadata:
        causes += _metadata_causes(obj, rt)
    seen = set()
    for error in sorted(_schema_errors(obj, rt), key=lambda e: list(map(str, e.absolute_path))):
        top = list(error.absolute_path)[:1]
        if top == ["metadata"] and rt.crd:
            continue  # ObjectMeta rules are objectmeta's (the CRD schema only says `type: object`)
        if top == ["status"] and not rt.crd:
            continue  # kube-apiserver's Go validation does not hold built-in status to the schema's required
        cause = _cause(error)
        key = (cause["field"], cause["message"])
        if key not in seen:
            seen.add(key)
            causes.append(cause)
    return causes


def _metadata_causes(obj: dict[str, Any], rt: ResourceType) -> list[Cause]:
    from llmd_lab.lab.apiserver import objectmeta

    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [{"field": "metadata", "message": "Required value", "reason": "FieldValueRequired"}]
    causes: list[Cause] = []
    name = meta.get("name")
    if rt.virtual:
        pass
    elif not name and not meta.get("generateName"):
        causes.append({"field": "metadata.name", "message": "Required value: name or generateName is required",
                       "reason": "FieldValueRequired"})
    elif isinstance(name, str) and name:
        causes += objectmeta.name_causes(rt, name)
    causes += objectmeta.label_causes(meta)
    return causes


# ------------------------------------------------------------------------------------------------ unknown fields
def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = builtin_definitions()[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _walk_unknown(value: Any, schema: dict[str, Any] | None, path: list[Any], found: list[list[Any]]) -> None:
    if schema is None:
        return
    schema = _resolve(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-embedded-resource"):
        if isinstance(value, dict) and "properties" in schema:
            for key, sub in value.items():
                _walk_unknown(sub, schema["properties"].get(key), [*path, key], found)
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            if props is not None and key in props:
                _walk_unknown(sub, props[key], [*path, key], found)
            elif isinstance(extra, dict):
                _walk_unknown(sub, extra, [*path, key], found)
            elif props is not None and extra is not True:
                found.append([*path, key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk_unknown(item, schema["items"], [*path, i], found)


def _root_schema(rt: ResourceType) -> dict[str, Any] | None:
    if rt.crd:
        if not rt.schema:
            return None
        schema = dict(rt.schema)
        props = dict(schema.get("properties") or {})
        props["metadata"] = builtin_definitions()[_OBJECT_META]
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        schema["properties"] = props
        return schema
    name = builtin_definition_name(rt.group, rt.version, rt.kind)
    return builtin_definitions()[name] if name else None


def _unknown_paths(obj: dict[str, Any], registry: ResourceRegistry) -> list[list[Any]]:
    rt = registry.find_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if rt is None:
        return []
    found: list[list[Any]] = []
    _walk_unknown(obj, _root_schema(rt), [], found)
    return found


def unknown_fields(obj: dict[str, Any], registry: ResourceRegistry) -> list[str]:
    """Paths of fields no schema declares (``spec.foo``, ``spec.template.spec.containers[0].bar``).

    kube-apiserver answers ``fieldValidation=Strict`` requests that have any with 400
    ``strict decoding error: unknown field "spec.foo"``; ``Warn`` turns them into warnings.
    """
    return [_path(p) for p in _unknown_paths(obj, registry)]


def prune(obj: dict[str, Any], registry: ResourceRegistry) -> dict[str, Any]:
    """A copy of ``obj`` without the unknown fields, as the API server stores it (structural pruning)."""
    out = copy.deepcopy(obj)
    for path in sorted(_unknown_paths(obj, registry), key=len, reverse=True):
        parent: Any = out
        for part in path[:-1]:
            parent = parent[part]
        parent.pop(path[-1], None)
    return out


def strict_error_message(obj: dict[str, Any], problems: list[str]) -> str:
    """The 400 message kube-apiserver gives for ``fieldValidation=Strict`` (problems: ``duplicate field "x"``,
    ``unknown field "y"``; test/integration/apiserver/field_validation_test.go)."""
    api_version = str(obj.get("apiVersion", ""))
    version = api_version.rpartition("/")[2]
    kind = obj.get("kind", "")
    return f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: {", ".join(problems)}'


# ------------------------------------------------------------------------------------------------ CRD schemas
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def structural_problems(schema: dict[str, Any], path: str = "openAPIV3Schema") -> list[str]:
    """Why a CRD schema is not *structural* (apiextensions.k8s.io/v1 requires it); empty when it is.

    Checked: every node has a ``type`` (unless int-or-string or preserve-unknown-fields), ``properties`` and
    ``additionalProperties`` are not combined, and ``anyOf``/``allOf``/``oneOf`` only constrain values
    (the int-or-string ``anyOf`` is the one allowed use of ``type`` inside them).
    """
    if not isinstance(schema, dict):
        return [f"{path}: must be an object"]
    problems: list[str] = []
    exempt = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if not schema.get("type") and not exempt:
        problems.append(f"{path}.type: Required value: must not be empty for specified object fields")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive")
    problems += _combinator_problems(schema, path)
    for name, sub in (schema.get("properties") or {}).items():
        problems += structural_problems(sub, f"{path}.properties[{name}]")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_problems(schema["additionalProperties"], f"{path}.additionalProperties")
    if isinstance(schema.get("items"), dict):
        problems += structural_problems(schema["items"], f"{path}.items")
    elif schema.get("type") == "array" and not exempt:
        problems.append(f"{path}.items: Required value: must be specified")
    return problems


def _combinator_problems(schema: dict[str, Any], path: str) -> list[str]:
    problems = []
    for combinator in ("anyOf", "allOf", "oneOf"):
        if schema.get("x-kubernetes-int-or-string") and schema.get(combinator) == _INT_OR_STRING:
            continue
        for i, branch in enumerate(schema.get(combinator) or ()):
            for forbidden in ("type", "additionalProperties", "default", "nullable", "description"):
                if isinstance(branch, dict) and forbidden in branch:
                    problems.append(f"{path}.{combinator}[{i}].{forbidden}: Forbidden: must be empty to be structural")
    return problems


# ------------------------------------------------------------------------------------------------ defaulting
def _fill_defaults(value: Any, schema: dict[str, Any] | None) -> None:
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and isinstance(sub, dict) and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key, item in value.items():
            if key in props:
                _fill_defaults(item, props[key])
            elif isinstance(schema.get("additionalProperties"), dict):
                _fill_defaults(item, schema["additionalProperties"])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _fill_defaults(item, schema["items"])


def apply_defaults(obj: dict[str, Any], registry: ResourceRegistry) -> dict[str, Any]:
    """A copy of a custom resource with its CRD schema's ``default`` values filled in, as kube-apiserver stores it.

    Defaults apply where the parent object is present and the field is absent (e.g. an InferencePool's
    ``endpointPickerRef.failureMode: FailClose``); built-in kinds are returned unchanged (Go defaulting).
    """
    out = copy.deepcopy(obj)
    rt = registry.find_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if rt is not None and rt.crd and rt.schema:
        _fill_defaults(out, {**rt.schema, "properties": {
            k: v for k, v in (rt.schema.get("properties") or {}).items() if k != "metadata"}})
    return out
