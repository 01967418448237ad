"""Response helpers: compact JSON, Status errors, Kubernetes ``Warning`` headers."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from llmd_lab.lab.apiserver import errors


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> Response:
    headers = {}
    if warnings:
        # RFC 7234 warn-code 299, the way kube-apiserver emits field-validation and deprecation warnings
        headers["warning"] = ", ".join('299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings)
    return Response(dumps(obj), status_code=status, media_type="application/json", headers=headers)


def raw_json(body: bytes, media_type: str = "application/json") -> Response:
    return Response(body, media_type=media_type)


def status_response(error: errors.ApiError) -> Response:
    return Response(dumps(error.to_status()), status_code=error.code, media_type="application/json")
