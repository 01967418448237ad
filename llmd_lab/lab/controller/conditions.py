"""Setting standard ``status.conditions`` entries without churning ``lastTransitionTime``."""

from __future__ import annotations

from typing import Any


def set_condition(conditions: list[dict[str, Any]], type_: str, status: str, reason: str = "", message: str = "",
                  now: str = "", **extra: Any) -> list[dict[str, Any]]:
    """A copy of ``conditions`` with ``type_`` set; the transition time moves only when the status changes."""
    out = [dict(c) for c in conditions if c.get("type") != type_]
    prev = next((c for c in conditions if c.get("type") == type_), None)
    cond: dict[str, Any] = {"type": type_, "status": status}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    cond.update(extra)
    when = prev.get("lastTransitionTime") if prev and prev.get("status") == status else now
    if when:
        cond["lastTransitionTime"] = when
    if "lastUpdateTime" in extra or (prev and "lastUpdateTime" in prev):
        cond["lastUpdateTime"] = now
    out.append(cond)
    return out


def condition(obj: dict, type_: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), None)


def is_true(obj: dict, type_: str) -> bool:
    c = condition(obj, type_)
    return bool(c and c.get("status") == "True")
