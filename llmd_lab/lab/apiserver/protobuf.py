"""Decoding Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``) into JSON objects.

``kubectl``'s typed commands (``create namespace``, ``create secret``, ``create deployment``,
``auth can-i``…) send protobuf bodies; ``apply``/``get``/``patch`` use JSON. The lab answers in JSON (its
clients always accept it) but must read these bodies. ``protobuf_types.json`` is a field table
(``message → [[number, jsonName, type, repeated]]``) derived from the Kubernetes 1.32 ``generated.proto``
wire format for the kinds kubectl creates through typed clients; a kind outside it gets a 415 that says to
use ``kubectl apply -f`` instead.

Wire format: the body is ``k8s\\x00`` + a ``runtime.Unknown`` message (typeMeta=1, raw=2,
contentEncoding=3, contentType=4) whose ``raw`` is the object message.
"""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from llmd_lab.lab.apiserver import errors

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
META = "k8s.io.apimachinery.pkg.apis.meta.v1."
PACKAGES = {
    "": "k8s.io.api.core.v1.", "apps": "k8s.io.api.apps.v1.", "batch": "k8s.io.api.batch.v1.",
    "rbac.authorization.k8s.io": "k8s.io.api.rbac.v1.", "authorization.k8s.io": "k8s.io.api.authorization.v1.",
    "authentication.k8s.io": "k8s.io.api.authentication.v1.",
}
_EPOCH = object()  # a zero metav1.Time: omitted, as its JSON form is null
SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float", "fixed64", "sint64"}


@cache
def _types() -> dict[str, list[list[Any]]]:
    text = resources.files(__package__).joinpath("protobuf_types.json").read_text(encoding="utf-8")
    return json.loads(text)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) in order; length-delimited values stay bytes."""
    out = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
            if pos > len(buf):
                raise ValueError("truncated length-delimited field")
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int, bits: int = 64) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _scalar(typ: str, wire: int, value: Any) -> Any:
    if typ == "string":
        return value.decode("utf-8")
    if typ == "bytes":
        return base64.b64encode(value).decode()
    if typ == "bool":
        return bool(value)
    if typ in ("int32", "int64"):
        return _signed(value)
    if typ == "sint64":
        return (value >> 1) ^ -(value & 1)
    if typ in ("uint32", "uint64"):
        return value
    if typ in ("double", "fixed64"):
        return struct.unpack("<d", value)[0] if typ == "double" else struct.unpack("<Q", value)[0]
    if typ == "float":
        return struct.unpack("<f", value)[0]
    raise ValueError(f"unknown scalar {typ}")


def _special(typ: str, raw: bytes) -> tuple[bool, Any]:
    """Types whose JSON form is not a plain object."""
    if typ in (META + "Time", META + "MicroTime"):
        values = {n: v for n, _, v in _fields(raw)}
        seconds, nanos = _signed(values.get(1, 0)), values.get(2, 0)
        if seconds == 0 and nanos == 0:
            return True, _EPOCH
        moment = datetime.fromtimestamp(seconds, UTC)
        if typ.endswith("MicroTime"):
            return True, moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
        return True, moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if typ == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        values = {n: v for n, _, v in _fields(raw)}
        if values.get(1, 0) == 1:
            return True, values.get(3, b"").decode()
        return True, _signed(values.get(2, 0), 32)
    if typ == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        values = {n: v for n, _, v in _fields(raw)}
        return True, values.get(1, b"").decode()
    if typ in (META + "FieldsV1", "k8s.io.apimachinery.pkg.runtime.RawExtension"):
        values = {n: v for n, _, v in _fields(raw)}
        data = values.get(1, b"")
        return True, json.loads(data) if data else None
    if typ == META + "Duration":
        values = {n: v for n, _, v in _fields(raw)}
        return True, f"{_signed(values.get(1, 0)) / 1e9:g}s"
    return False, None


def _message(typ: str, raw: bytes) -> Any:
    handled, value = _special(typ, raw)
    if handled:
        return value
    table = _types().get(typ)
    if table is None:
        raise ValueError(f"no field table for {typ}")
    by_number = {f[0]: f for f in table}
    zero_ints = typ == META + "ObjectMeta"
    out: dict[str, Any] = {}
    for number, wire, value in _fields(raw):
        field = by_number.get(number)
        if field is None:
            continue  # unknown field: dropped, as kube-apiserver's decoder does
        _, name, ftype, repeated = field
        if ftype.startswith("map<"):
            key, item = _map_entry(ftype, value)
            out.setdefault(name, {})[key] = item
            continue
        if repeated and wire == 2 and ftype in SCALARS - {"string", "bytes"}:
            out.setdefault(name, []).extend(_packed(ftype, value))
            continue
        decoded = _decode_value(ftype, wire, value)
        if not repeated and (decoded == "" or decoded is _EPOCH):
            continue  # Go's encoder writes zero values of non-pointer fields; its JSON omits them
        if repeated:
            out.setdefault(name, []).append(decoded)
        else:
            out[name] = decoded
    if zero_ints:
        for key in ("generation", "deletionGracePeriodSeconds"):
            if out.get(key) == 0:
                del out[key]
    return out


def _map_entry(ftype: str, value: bytes) -> tuple[Any, Any]:
    key_type, value_type = ftype[4:-1].split(",")
    entry = {n: (w, v) for n, w, v in _fields(value)}
    key = _scalar(key_type, *entry[1]) if 1 in entry else ""
    item = _decode_value(value_type, *entry[2]) if 2 in entry else ("" if value_type == "string" else None)
    return key, item


def _packed(ftype: str, value: bytes) -> list[Any]:
    """Packed repeated scalars."""
    items, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        items.append(_scalar(ftype, 0, v))
    return items


def _decode_value(typ: str, wire: int, value: Any) -> Any:
    if typ in SCALARS:
        return _scalar(typ, wire, value)
    return _message(typ, value)


def decode(body: bytes, group: str, kind: str) -> dict[str, Any]:
    """A protobuf request body for ``group``/``kind`` as the JSON object it encodes."""
    if not body.startswith(MAGIC):
        raise errors.bad_request("the protobuf body does not start with the Kubernetes magic prefix k8s\\x00")
    try:
        envelope = {n: v for n, _, v in _fields(body[len(MAGIC):])}
        type_meta = {n: v.decode() for n, _, v in _fields(envelope.get(1, b""))}
        api_version, body_kind = type_meta.get(1, ""), type_meta.get(2, "")
        kind = body_kind or kind
        if kind == "DeleteOptions":
            typ = META + "DeleteOptions"
        else:
            package = PACKAGES.get(group)
            typ = f"{package}{kind}" if package else ""
        if typ not in _types():
            raise errors.unsupported_media_type(
                CONTENT_TYPE + f" for {kind} (the lab reads protobuf only for the kinds kubectl creates with typed "
                "commands; use `kubectl apply -f` with YAML)", ["application/json", "application/yaml"],
            )
        obj = _message(typ, envelope.get(2, b""))
    except (ValueError, KeyError, UnicodeDecodeError, struct.error) as exc:
        raise errors.bad_request(f"error decoding protobuf body: {exc}") from None
    if api_version:
        obj = {"apiVersion": api_version, "kind": kind, **obj}
    return obj
