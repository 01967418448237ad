"""Resource quantities as kube-scheduler counts them: cpu in millicores, everything else in integer units."""

from __future__ import annotations

import math
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity as _parse

__all__ = ["format_memory", "parse_quantity", "to_units"]


def parse_quantity(value: str | int | float) -> Decimal:
    """``"500m"`` → 0.5, ``"64Gi"`` → 68719476736; raises ValueError naming the bad value."""
    try:
        return _parse(value)
    except ValueError as exc:
        raise ValueError(f"invalid resource quantity {value!r}: {exc}") from exc


def to_units(resource: str, value: str | int | float) -> int:
    """Millicores for ``cpu``, whole units (bytes, devices, pods) for the rest, rounded up like Kubernetes."""
    q = parse_quantity(value)
    if resource == "cpu":
        return math.ceil(q * 1000)
    return math.ceil(q)


def format_memory(n_bytes: int) -> str:
    """Bytes as the largest exact binary unit (``Ki``/``Mi``/``Gi``), the way node status shows memory."""
    for suffix, factor in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if n_bytes % factor == 0:
            return f"{n_bytes // factor}{suffix}"
    return str(n_bytes)
