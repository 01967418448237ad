"""kube-apiserver's built-in validation beyond the OpenAPI schema (filled in below)."""

from __future__ import annotations

from llmd_lab.lab.apiserver.registry import ResourceType


def causes(obj: dict, rt: ResourceType, old: dict | None) -> list[dict[str, str]]:
    return []
