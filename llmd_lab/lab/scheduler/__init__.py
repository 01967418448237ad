"""kube-scheduler for the lab: the fit/score plugins (``fit``), Kueue quota admission (``kueue``) and the
component that binds pods (``scheduler``)."""

from __future__ import annotations

from typing import Any


def components(ctx: Any) -> list:
    from llmd_lab.lab.scheduler.scheduler import KubeScheduler

    return [KubeScheduler()]
