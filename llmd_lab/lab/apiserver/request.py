"""Parsing requests: URL → resource target, bodies (size-limited JSON/YAML), query options, Accept."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from starlette.requests import Request

from llmd_lab.lab.apiserver import errors

TABLE = "table"
PARTIAL = "partial"
JSON = "json"


@dataclass(frozen=True)
class Target:
    """What a resource URL names: ``/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<sub>[/<rest>]]]``."""

    group: str
    version: str
    namespace: str | None
    plural: str
    name: str | None = None
    subresource: str | None = None
    rest: str = ""  # the proxy path after the subresource

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def parse_target(path: str) -> Target:
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise errors.resource_not_found()
    if not rest or not rest[0]:
        raise errors.resource_not_found()
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    tail = "/".join(rest[3:]) if len(rest) > 3 else ""
    if sub is not None and sub != "proxy" and tail:
        raise errors.resource_not_found()
    if name == "":
        raise errors.resource_not_found()
    return Target(group, version, namespace, plural, name, sub, tail)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it passes ``limit`` bytes (never buffering more)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise errors.request_entity_too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.request_entity_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


BODY_MEDIA_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
MAX_DEPTH = 100  # the lab's bound on object nesting (kube-apiserver's JSON decoder stops at 10000)


@dataclass(frozen=True)
class Body:
    """A decoded request body and the JSON keys it repeated (``fieldValidation`` reports them)."""

    object: Any
    duplicates: list[str]


def decode_object(body: bytes, content_type: str, group: str = "", kind: str = "") -> Any:
    """A JSON, YAML or (for kubectl's typed commands) protobuf request body; 400 naming what did not parse."""
    return decode_body(body, content_type, group, kind).object


def decode_body(body: bytes, content_type: str, group: str = "", kind: str = "") -> Body:
    """Like :func:`decode_object`, keeping the duplicated keys; 415 for a media type the API does not read
    (kube-apiserver's NegotiateInputSerializer; no Content-Type means JSON)."""
    if not body.strip():
        raise errors.bad_request("the request body is empty; send the object as JSON")
    media = content_type.split(";")[0].strip().lower() or "application/json"
    if media not in BODY_MEDIA_TYPES:
        raise errors.unsupported_media_type(media, BODY_MEDIA_TYPES)
    if media == "application/yaml":
        try:
            decoded = Body(yaml.safe_load(body), [])
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from None
        except RecursionError:
            raise errors.bad_request(_too_deep("more than 1000")) from None
    elif media == "application/vnd.kubernetes.protobuf":
        from llmd_lab.lab.apiserver import protobuf

        decoded = Body(protobuf.decode(body, group, kind), [])
    else:
        decoded = _decode_json(body)
    depth = nesting(decoded.object)
    if depth > MAX_DEPTH:
        raise errors.bad_request(_too_deep(f"more than {MAX_DEPTH}"))
    return decoded


def _too_deep(depth: str) -> str:
    return (f"the request body nests {depth} levels deep; the lab reads objects at most {MAX_DEPTH} levels deep "
            "(flatten the object)")


def _decode_json(body: bytes) -> Body:
    repeated: dict[int, list[str]] = {}

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict:
        out = dict(pairs)
        if len(out) != len(pairs):
            seen: set[str] = set()
            repeated[id(out)] = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
        return out

    try:
        obj = json.loads(body, object_pairs_hook=pairs_hook)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"error decoding JSON body: {exc} (is the body valid JSON?)") from None
    except RecursionError:
        raise errors.bad_request(_too_deep("more than 1000")) from None
    return Body(obj, _duplicate_paths(obj, repeated) if repeated else [])


def nesting(value: Any) -> int:
    """How deep ``value`` nests (iteratively: a hostile body must not exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _duplicate_paths(obj: Any, repeated: dict[int, list[str]]) -> list[str]:
    """``metadata.name``, ``spec.containers[0].image``: where a key was repeated, as kube's strict decoder
    names it."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(obj, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            found += [f"{path}.{k}" if path else k for k in dict.fromkeys(repeated.get(id(node), []))]
            stack.extend((v, f"{path}.{k}" if path else k) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(node))))
    return found


def output_mode(accept: str) -> tuple[str, str]:
    """(mode, version) from Accept: a ``Table``, ``PartialObjectMetadata`` or plain JSON (protobuf → JSON)."""
    for part in accept.split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in part.split(";")[1:])}
        if params.get("g") == "meta.k8s.io":
            if params.get("as") == "Table":
                return TABLE, params.get("v", "v1")
            if params.get("as") in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return PARTIAL, params.get("v", "v1")
    return JSON, ""


def flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def dry_run(query: Any) -> bool:
    values = query.getlist("dryRun")
    for v in values:
        if v != "All":
            raise errors.bad_request(f'invalid dryRun value {v!r}: the only supported value is "All"')
    return bool(values)


def int_param(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(f"invalid {name} {value!r}: must be an integer") from None
    if number < 0:
        raise errors.bad_request(f"invalid {name} {value!r}: must be zero or positive")
    return number


def field_validation(query: Any) -> str:
    value = query.get("fieldValidation") or "Warn"
    if value not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f'invalid fieldValidation {value!r}: use "Strict", "Warn" or "Ignore"'
        )
    return value
