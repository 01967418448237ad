"""Pod lifecycle stages as data (``stages.yaml``), rendered for one pod/container.

``render(stage, fields)`` gives the container state, pod phase/conditions and events a stage produces;
the kubelet applies them. Kept pure so the stages have golden tests (tests/lab/kubelet/testdata).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml


@dataclass
class Rendered:
    stage: str
    container: dict[str, Any] | None = None
    init: dict[str, Any] | None = None
    pod: dict[str, Any] | None = None
    events: list[dict[str, str]] = field(default_factory=list)
    delay_seconds: float = 0.0


@cache
def _data() -> dict[str, Any]:
    return yaml.safe_load(resources.files(__package__).joinpath("stages.yaml").read_text())


def stage_names() -> list[str]:
    return list(_data()["stages"])


def stage(name: str) -> dict[str, Any]:
    try:
        return _data()["stages"][name]
    except KeyError:
        raise KeyError(f"no pod lifecycle stage {name!r}; known: {', '.join(stage_names())}") from None


def image_bytes(image: str) -> int:
    for entry in _data()["images"]:
        if entry["match"] in image:
            return int(entry["bytes"])
    return 0


def _fill(value: Any, fields: dict[str, Any]) -> Any:
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in fields and value.count("{") == 1:
            return fields[value[1:-1]]  # keep the field's type (exitCode stays an int)
        return value.format(**fields)
    if isinstance(value, dict):
        return {k: _fill(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, fields) for v in value]
    return value


def pull_seconds(image: str) -> float:
    delay = stage("image-pull").get("delay") or {}
    return round(float(delay.get("seconds", 0)) + float(delay.get("perGiB", 0)) * image_bytes(image) / 1024**3, 3)


def backoff_seconds(restarts: int) -> float:
    """CrashLoopBackOff delay after the ``restarts``-th failure: 10 s, 20 s, 40 s … capped at 5 min."""
    b = stage("crash-loop-back-off")["backoff"]
    return float(min(b["initialSeconds"] * b["factor"] ** max(restarts - 1, 0), b["maxSeconds"]))


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text for whole seconds: ``10s``, ``1m20s``, ``5m0s``."""
    s = int(seconds)
    return f"{s // 60}m{s % 60}s" if s >= 60 else f"{s}s"


def render(name: str, fields: dict[str, Any]) -> Rendered:
    """The stage ``name`` with ``{…}`` filled from ``fields``."""
    data = copy.deepcopy(stage(name))
    delay = data.get("delay") or {}
    return Rendered(
        stage=name,
        container=_fill(data.get("container"), fields) if data.get("container") else None,
        init=_fill(data.get("init"), fields) if data.get("init") else None,
        pod=_fill(data.get("pod"), fields) if data.get("pod") else None,
        events=[_fill(e, fields) for e in data.get("events") or []],
        delay_seconds=float(delay.get("seconds", 0)),
    )
