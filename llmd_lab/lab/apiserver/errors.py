"""Kubernetes API errors, rendered as ``meta.k8s.io/v1`` ``Status`` objects.

Clients branch on ``code`` and ``reason`` (``kubectl`` prints ``message``), so every failure the lab reports
goes through :class:`ApiError` and carries the same code/reason/message shape a real API server uses.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed API call: HTTP ``code``, machine ``reason`` (``NotFound``, ``Invalid``…), human ``message``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        causes: list[dict[str, str]] | None = None,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.causes = list(causes or [])
        self.details = dict(details or {})

    def to_status(self) -> dict[str, Any]:
        """The ``Status`` body a real API server returns for this error."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details = dict(self.details)
        if self.causes:
            details["causes"] = self.causes
        if details:
            status["details"] = details
        return status

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def _details(name: str | None, plural: str, group: str) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": plural}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def not_found(plural: str, group: str, name: str) -> ApiError:
    """``pods "x" not found`` / ``llminferenceservices.serving.kserve.io "x" not found``."""
    return ApiError(
        404, "NotFound", f'{_qualified(plural, group)} "{name}" not found', details=_details(name, plural, group)
    )


def resource_not_found() -> ApiError:
    """An unknown URL or resource type, worded as kube-apiserver words it."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(plural, group)} "{name}" already exists',
        details=_details(name, plural, group),
    )


def conflict(plural: str, group: str, name: str, why: str | None = None) -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
        details=_details(name, plural, group),
    )


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    """422 with one cause per bad field; the message lists them like kube-apiserver does."""
    parts = []
    for cause in causes:
        field = cause.get("field", "")
        text = cause.get("message", "")
        parts.append(f"{field}: {text}" if field else text)
    qualified = f"{kind}.{group}" if group else kind
    message = f'{qualified} "{name}" is invalid: ' + ", ".join(parts) if parts else f'{qualified} "{name}" is invalid'
    return ApiError(
        422, "Invalid", message, causes, details={"name": name, "kind": kind, **({"group": group} if group else {})}
    )


def field_cause(field: str, message: str, reason: str = "FieldValueInvalid") -> dict[str, str]:
    return {"field": field, "message": message, "reason": reason}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def gone(message: str = "too old resource version") -> ApiError:
    return ApiError(410, "Expired", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def request_entity_too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"the request body is larger than the {limit}-byte limit")


def unsupported_media_type(content_type: str, allowed: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(allowed)}"
        + (f" (got {content_type!r})" if content_type else ""),
    )
