"""Typed decoding of built-in kinds: what fails in kube-apiserver's JSON decoder (400 BadRequest), before any
validation — integers too large for their Go type, malformed quantities, ``[]byte`` fields that are not
base64. Detected by walking the object along its OpenAPI schema (the Go types' shape).

Upstream: staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go (transformDecodeError: "<Kind> in
version "<v>" cannot be handled as a <Kind>: <decoder error>"), Go encoding/json's UnmarshalTypeError
("json: cannot unmarshal number N into Go struct field T.path of type int32"), apimachinery
pkg/api/resource/quantity.go (ErrFormatWrong), encoding/base64 (CorruptInputError).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from llmd_lab.lab.apiserver import errors, quantity, validation
from llmd_lab.lab.apiserver.registry import ResourceType

INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_BASE64 = re.compile(r"[A-Za-z0-9+/=]")
MAX_WALK_DEPTH = 64  # the built-in kinds' schemas are far shallower; deeper values are free-form


def check(obj: dict, rt: ResourceType) -> None:
    """Raise the 400 kube-apiserver's decoder answers for ``obj``, if any."""
    if rt.crd:
        return
    name = validation.builtin_definition_name(rt.group, rt.version, rt.kind)
    if name is None:
        return
    problem = _walk(obj, {"$ref": f"#/$defs/{name}"}, [], rt.kind, 0)
    if problem is not None:
        raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {problem}')


def _resolve(schema: dict, struct: str) -> tuple[dict, str]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref[len("#/$defs/"):]
        return validation.builtin_definitions().get(name, {}), name
    return schema, struct


def _walk(value: Any, schema: Any, path: list[str], struct: str, depth: int) -> str | None:
    if not isinstance(schema, dict) or depth > MAX_WALK_DEPTH:
        return None
    schema, name = _resolve(schema, struct)
    if name == QUANTITY:
        return None if value is None or quantity.well_formed(value) else quantity.FORMAT_ERROR
    problem = _scalar(value, schema, path, name)
    if problem is not None:
        return problem
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            found = _walk(item, sub, [*path, key], name.rsplit(".", 1)[-1] if key in props else struct, depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _walk(item, schema.get("items"), path, struct, depth + 1)
            if found:
                return found
    return None


def _scalar(value: Any, schema: dict, path: list[str], struct: str) -> str | None:
    fmt = schema.get("format")
    if fmt in INT_BOUNDS and isinstance(value, int) and not isinstance(value, bool):
        low, high = INT_BOUNDS[fmt]
        if not low <= value <= high:
            field = ".".join(path)
            return f"json: cannot unmarshal number {value} into Go struct field {struct}.{field} of type {fmt}"
    if fmt == "byte" and isinstance(value, str):
        return _base64_problem(value)
    return None


def _base64_problem(text: str) -> str | None:
    """encoding/base64 StdEncoding's CorruptInputError, at the first byte it cannot take."""
    try:
        base64.b64decode(text, validate=True)
        return None
    except (binascii.Error, ValueError):
        pass
    bad = next((i for i, ch in enumerate(text) if not _BASE64.match(ch)), None)
    if bad is None:
        bad = len(text) - len(text) % 4 if len(text) % 4 else max(len(text) - 1, 0)
    return f"illegal base64 data at input byte {bad}"
