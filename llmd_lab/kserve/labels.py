"""Labels KServe puts on an ``LLMInferenceService``'s children, and the selectors that find them.

Mirrors pkg/controller/llmisvc/workload.go (GetWorkloadLabelSelector), scheduler.go (SchedulerLabels) and
router.go. Selectors come as dicts (for objects) and as ``key=value,…`` strings (for list calls).
"""

from __future__ import annotations

from collections.abc import Mapping

PART_OF = "llminferenceservice"
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
COMPONENT_LABEL = "app.kubernetes.io/component"
KSERVE_COMPONENT_LABEL = "kserve.io/component"
ROLE_LABEL = "llm-d.ai/role"
ROLES = ("prefill", "decode", "both")

WORKLOAD_COMPONENT = "llminferenceservice-workload"
SCHEDULER_COMPONENT = "llminferenceservice-router-scheduler"
ROUTER_COMPONENT = "llminferenceservice-router"


def base_labels(name: str) -> dict[str, str]:
    """name + part-of: on every child; the selector for all of a service's pods."""
    return {NAME_LABEL: name, PART_OF_LABEL: PART_OF}


def workload_labels(name: str, component: str, role: str | None, *, workload: bool = True) -> dict[str, str]:
    """Labels of workload pods/Deployments: component, name, part-of, kserve.io/component, llm-d.ai/role."""
    labels = {COMPONENT_LABEL: component, **base_labels(name)}
    if workload:
        labels[KSERVE_COMPONENT_LABEL] = "workload"
    if role:
        labels[ROLE_LABEL] = role
    return labels


def scheduler_labels(name: str) -> dict[str, str]:
    return {COMPONENT_LABEL: SCHEDULER_COMPONENT, **base_labels(name)}


def router_labels(name: str) -> dict[str, str]:
    return {COMPONENT_LABEL: ROUTER_COMPONENT, **base_labels(name)}


def pool_selector(name: str) -> dict[str, str]:
    """Default InferencePool selector: every workload pod (decode and prefill) of this service."""
    return {PART_OF_LABEL: PART_OF, NAME_LABEL: name, KSERVE_COMPONENT_LABEL: "workload"}


def selector_string(labels: Mapping[str, str]) -> str:
    """``k=v,k=v`` in the given order, as ``kubectl -l`` and the list API take it."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


def workload_selector(name: str) -> str:
    """Label selector of an LLMInferenceService's vLLM pods (decode and prefill)."""
    return selector_string(pool_selector(name))


def service_selector(name: str) -> str:
    """Label selector of every pod KServe runs for the service (workload and EPP)."""
    return selector_string({PART_OF_LABEL: PART_OF, NAME_LABEL: name})


def scheduler_selector(name: str) -> str:
    """Label selector of the service's endpoint picker (EPP) pods — the router-scheduler Deployment."""
    return f"{COMPONENT_LABEL}={SCHEDULER_COMPONENT},{service_selector(name)}"


def role_selector(name: str, role: str) -> str:
    """Label selector of the workload pods with one ``llm-d.ai/role`` (prefill, decode, or both without P/D)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    return f"{workload_selector(name)},{ROLE_LABEL}={role}"
