"""The endpoint picker's side of a manifest: an ``EndpointPickerConfig`` from scorer weights, and the EPP
container's arguments (``router.scheduler.template``), where the config travels as ``--config-text``."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from llmd_lab.kserve.epp import EPP_CONFIG_API_VERSION
from llmd_lab.manifests.keys import KV_METRIC_FLAG, KV_METRIC_NAME, ManifestError

KSERVE_DEFAULT_WEIGHTS: dict[str, float] = {"prefix-cache-scorer": 2, "load-aware-scorer": 1}
COURSE_WEIGHTS: dict[str, float] = {
    "queue-scorer": 2,
    "kv-cache-utilization-scorer": 2,
    "prefix-cache-scorer": 3,
}
KNOWN_SCORERS = {
    "prefix-cache-scorer",
    "kv-cache-utilization-scorer",
    "queue-scorer",
    "lora-affinity-scorer",
    "load-aware-scorer",
    "active-request-scorer",
    "session-affinity-scorer",
    "precise-prefix-cache-scorer",
}


def scheduler_config(
    weights: Mapping[str, float] | None = None,
    *,
    picker: str = "max-score-picker",
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    pd_threshold: int | None = None,
) -> dict:
    """An ``EndpointPickerConfig`` as a dict, from scorer weights (default: KServe's prefix 2 / load 1).

    ``parameters`` gives per-plugin parameters (e.g. ``{"prefix-cache-scorer": {"hashBlockSize": 5}}``).
    ``pd_threshold`` builds the P/D shape instead: ``pd-profile-handler`` with prefill and decode
    profiles each filtering by role and scoring with ``weights``.
    """
    weights = dict(KSERVE_DEFAULT_WEIGHTS if weights is None else weights)
    unknown = sorted(set(weights) - KNOWN_SCORERS)
    if unknown:
        raise ManifestError(
            [f"unknown scorer {u!r}: use one of {', '.join(sorted(KNOWN_SCORERS))}" for u in unknown]
        )
    bad = [f"weight of {k} is {v}: weights must be positive numbers" for k, v in weights.items() if v <= 0]
    if bad:
        raise ManifestError(bad)
    params = {k: dict(v) for k, v in (parameters or {}).items()}

    def plugin(t: str) -> dict:
        return {"type": t, "parameters": params[t]} if t in params else {"type": t}

    def refs(extra_first: list[str]) -> list[dict]:
        out: list[dict] = [{"pluginRef": r} for r in extra_first]
        out += [{"pluginRef": k, "weight": _num(v)} for k, v in weights.items()]
        out.append({"pluginRef": picker})
        return out

    if pd_threshold is None:
        plugins = [plugin("single-profile-handler"), *(plugin(k) for k in weights), plugin(picker)]
        profiles = [{"name": "default", "plugins": refs([])}]
    else:
        handler = {"type": "pd-profile-handler", "parameters": {"threshold": int(pd_threshold)}}
        plugins = [
            plugin("prefill-header-handler"),
            plugin("prefill-filter"),
            plugin("decode-filter"),
            *(plugin(k) for k in weights),
            plugin(picker),
            handler,
        ]
        profiles = [
            {"name": "prefill", "plugins": refs(["prefill-filter"])},
            {"name": "decode", "plugins": refs(["decode-filter"])},
        ]
    return {
        "apiVersion": EPP_CONFIG_API_VERSION,
        "kind": "EndpointPickerConfig",
        "plugins": plugins,
        "schedulingProfiles": profiles,
    }


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def resolve_scheduler(scheduler: object, *, pd: bool) -> dict | None:
    """The ``scheduler=`` argument of the builder as a config dict; None leaves KServe's default in place."""
    if scheduler is None or scheduler == "kserve-default":
        return None  # KServe injects its own default (prefix 2 / load 1, or the P/D one)
    if scheduler == "course":
        return scheduler_config(COURSE_WEIGHTS, pd_threshold=0 if pd else None)
    if isinstance(scheduler, Mapping) and scheduler.get("kind") == "EndpointPickerConfig":
        return copy.deepcopy(dict(scheduler))
    if isinstance(scheduler, Mapping):
        return scheduler_config(scheduler, pd_threshold=0 if pd else None)
    raise ManifestError(
        [f"scheduler {scheduler!r}: use 'kserve-default', 'course', a dict of scorer weights "
         "or an EndpointPickerConfig dict"]
    )  # fmt: skip


def epp_args(pool: str, namespace: str, config_text: str | None, kv_workaround: bool) -> list[str]:
    """The EPP container's full arg list (args replace the preset's list, so all of them are given)."""
    args = [
        "--pool-group", "inference.networking.x-k8s.io",
        "--pool-name", pool,
        "--pool-namespace", namespace,
        "--zap-encoder", "json",
        "--grpc-port", "9002",
        "--grpc-health-port", "9003",
        "--secure-serving",
        "--model-server-metrics-scheme", "https",
        "--model-server-metrics-https-insecure-skip-verify",
        "--cert-path", "/var/run/kserve/tls",
    ]  # fmt: skip
    if kv_workaround:
        args += [KV_METRIC_FLAG, KV_METRIC_NAME]
    if config_text is not None:
        args += ["--config-text", config_text]
    return args
