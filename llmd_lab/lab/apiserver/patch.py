"""PATCH bodies: JSON merge patch, JSON patch, strategic merge patch and server-side apply.

``kubectl label``/``annotate``/``scale`` send merge patches, ``kubectl apply``/``edit`` send strategic merge
patches for built-in kinds (merge patches for custom resources), and controllers written with
``fieldManager`` send apply patches. Each function returns a *new* object and never mutates its inputs, so
a failing patch leaves the stored object as it was.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import jsonpatch
import jsonpointer

from llmd_lab.lab.apiserver import errors

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (JSON, MERGE, STRATEGIC, APPLY)
ALIASES = {"merge": MERGE, "json": JSON, "strategic": STRATEGIC, "apply": APPLY}

# Merge keys from the Kubernetes types' `patchMergeKey` tags, by field name (with a parent hint where the
# same field name merges differently).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
    "ownerReferences": "uid",
    "resourceClaims": "name",
}
PORT_KEYS = {"containers": "containerPort", "spec": "port"}  # container ports vs Service ports
SET_LISTS = {"finalizers"}  # lists of primitives merged as sets


def normalize_type(patch_type: str) -> str:
    base = patch_type.split(";")[0].strip().lower()
    base = ALIASES.get(base, base)
    if base not in PATCH_TYPES:
        raise errors.unsupported_media_type(patch_type, list(PATCH_TYPES))
    return base


def parse_body(body: bytes | str | dict | list, patch_type: str) -> Any:
    """Decode a PATCH body; malformed bodies are a 400 that says what did not parse."""
    if isinstance(body, dict | list):
        return body
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if patch_type == APPLY:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding YAML apply patch: {exc}") from None
        if not isinstance(doc, dict):
            raise errors.bad_request("an apply patch must be a YAML or JSON object (one Kubernetes object)")
        return doc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding patch: invalid JSON: {exc}") from None
    if patch_type == JSON and not isinstance(doc, list):
        raise errors.bad_request("a JSON patch (application/json-patch+json) must be a JSON array of operations")
    if patch_type in (MERGE, STRATEGIC) and not isinstance(doc, dict):
        raise errors.bad_request(f"a {patch_type} patch must be a JSON object")
    return doc


# ---- RFC 7386
def merge_patch(target: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386): objects merge, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---- RFC 6902
def json_patch(target: dict, ops: list) -> dict:
    """JSON patch (RFC 6902); a failing ``test`` or a missing path is a 422 naming the operation."""
    try:
        patch = jsonpatch.JsonPatch(ops)
        return patch.apply(copy.deepcopy(target))
    except jsonpatch.JsonPatchTestFailed as exc:
        raise errors.ApiError(422, "Invalid", f"the JSON patch test operation failed: {exc}") from None
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as exc:
        raise errors.ApiError(422, "Invalid", f"the JSON patch could not be applied: {exc}") from None
    except jsonpatch.InvalidJsonPatch as exc:
        raise errors.bad_request(f"invalid JSON patch: {exc}") from None
    except (TypeError, KeyError, AttributeError) as exc:
        raise errors.bad_request(f"invalid JSON patch operation: {exc}") from None


# ---- strategic merge patch
def _merge_key(field: str, parent: str) -> str | None:
    if field == "ports":
        return PORT_KEYS.get(parent, "containerPort")
    return MERGE_KEYS.get(field)


def strategic_merge(target: Any, patch: Any, parent: str = "") -> Any:
    """Strategic merge patch: lists with a merge key merge element-wise, directives ``$patch``, ``$retainKeys``,
    ``$deleteFromPrimitiveList/<f>`` and ``$setElementOrder/<f>`` are honoured (the last one ignored)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        _merge_field(result, key, value, parent)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_field(result: dict, key: str, value: Any, parent: str) -> None:
    current = result.get(key)
    if isinstance(value, list):
        result[key] = _merge_list(current, value, key, parent)
    elif isinstance(value, dict):
        merged = strategic_merge(current, value, key)
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    else:
        result[key] = value


def _merge_list(current: Any, patch: list, field: str, parent: str) -> list:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    current = list(current) if isinstance(current, list) else []
    if field in SET_LISTS:
        out = list(current)
        for item in patch:
            if item not in out:
                out.append(item)
        return out
    key = _merge_key(field, parent)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return copy.deepcopy(patch)
    out = [copy.deepcopy(i) for i in current]
    for item in patch:
        directive = item.get("$patch")
        idx = next((n for n, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item.get(key)), None)
        if directive == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(strategic_merge({}, item, field))
        else:
            out[idx] = strategic_merge(out[idx], item, field)
    return out


# ---- server-side apply
def fields_v1(obj: Any, field: str = "", parent: str = "") -> dict:
    """A ``FieldsV1`` set for an applied configuration (``f:`` keys, ``k:`` for keyed list items)."""
    if isinstance(obj, dict):
        return {f"f:{k}": fields_v1(v, k, field) for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if isinstance(obj, list):
        key = _merge_key(field, parent)
        if key and all(isinstance(i, dict) and key in i for i in obj):
            return {
                "k:" + json.dumps({key: i[key]}, separators=(",", ":")): {".": {}, **fields_v1(i, field, parent)}
                for i in obj
            }
    return {}


def apply_patch(live: dict | None, applied: dict, field_manager: str, api_version: str) -> dict:
    """Server-side apply, simplified: merge the applied configuration into the live object and record the
    manager in ``metadata.managedFields``.

    There is no conflict detection and no removal of fields a manager stopped applying: every apply wins,
    like ``--force-conflicts``. That is enough for the workshop's controllers and ``kubectl apply
    --server-side``; two managers fighting over one field are not something the lab models.
    """
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = copy.deepcopy(live) if live is not None else {}
    merged = strategic_merge(base, {k: v for k, v in applied.items()})
    meta = merged.setdefault("metadata", {})
    entries = [e for e in (live or {}).get("metadata", {}).get("managedFields", []) or []
               if not (e.get("manager") == field_manager and e.get("operation") == "Apply")]
    body = {k: v for k, v in applied.items() if k != "metadata"}
    applied_meta = {k: v for k, v in (applied.get("metadata") or {}).items() if k in ("labels", "annotations")}
    if applied_meta:
        body["metadata"] = applied_meta
    entries.append({
        "manager": field_manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(body),
    })
    meta["managedFields"] = entries
    return merged


def apply(target: dict, patch: Any, patch_type: str) -> dict:
    """Apply a decoded patch of one of the three non-apply types to a copy of ``target``."""
    if patch_type == MERGE:
        return merge_patch(target, patch)
    if patch_type == JSON:
        result = json_patch(target, patch)
        if not isinstance(result, dict):
            raise errors.ApiError(422, "Invalid", "the JSON patch must leave an object, not replace it")
        return result
    if patch_type == STRATEGIC:
        result = strategic_merge(target, patch)
        return result if isinstance(result, dict) else {}
    raise errors.unsupported_media_type(patch_type, list(PATCH_TYPES))
