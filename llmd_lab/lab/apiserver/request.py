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


def decode_object(body: bytes, content_type: str, group: str = "", kind: str = "") -> Any:
    """A JSON, YAML or (for kubectl's typed commands) protobuf request body; 400 naming what did not parse."""
    if not body.strip():
        raise errors.bad_request("the request body is empty; send the object as JSON")
    media = content_type.split(";")[0].strip().lower()
    if media in ("application/yaml", "application/x-yaml", "text/yaml"):
        try:
            return yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from None
    if media == "application/vnd.kubernetes.protobuf":
        from llmd_lab.lab.apiserver import protobuf

        return protobuf.decode(body, group, kind)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"error decoding JSON body: {exc} (is the body valid JSON?)") from None


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
