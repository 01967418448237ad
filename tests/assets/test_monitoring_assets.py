"""assets/monitoring/: valid objects, and scraping through them yields exactly the series the OpenShift dashboard reads.

The PodMonitor/ServiceMonitor are checked against the lab's CRD schemas (the same validation the lab's API
server applies), the RBAC objects against Kubernetes' own schemas (kubernetes-validate). Then the monitors'
selectors and relabelling rules are applied, with Prometheus' semantics, to a vLLM and an EPP target labelled as
KServe labels them: the resulting names and labels must be the ones the OpenShift dashboard queries.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "assets" / "monitoring"

# Labels KServe's llmisvc controller puts on the workload pods and the EPP (reference §5.3).
WORKLOAD_POD_LABELS = {
    "app.kubernetes.io/component": "llminferenceservice-workload",
    "app.kubernetes.io/name": "qwen",
    "app.kubernetes.io/part-of": "llminferenceservice",
    "kserve.io/component": "workload",
    "llm-d.ai/role": "both",
}
PREFILL_POD_LABELS = {**WORKLOAD_POD_LABELS, "app.kubernetes.io/component": "llminferenceservice-workload-prefill",
                      "llm-d.ai/role": "prefill"}  # fmt: skip
EPP_LABELS = {
    "app.kubernetes.io/component": "llminferenceservice-router-scheduler",
    "app.kubernetes.io/name": "qwen",
    "app.kubernetes.io/part-of": "llminferenceservice",
}


def _objects() -> list[dict]:
    docs = []
    for path in sorted(MONITORING.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _by_kind(kind: str) -> dict:
    [obj] = [o for o in _objects() if o["kind"] == kind]
    return obj


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    files = {p.name for p in MONITORING.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_builtin_objects_validate_against_kubernetes_schemas() -> None:
    builtin = [o for o in _objects() if o["apiVersion"] in ("v1", "rbac.authorization.k8s.io/v1")]
    assert {o["kind"] for o in builtin} == {"ServiceAccount", "Secret", "ClusterRoleBinding"}
    for obj in builtin:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_monitors_validate_against_the_lab_crd_schemas() -> None:
    from llmd_lab.lab import crds
    from llmd_lab.lab.apiserver.registry import ResourceRegistry
    from llmd_lab.lab.apiserver.validation import validate_object

    registry = ResourceRegistry()
    for crd in crds.load(["podmonitors.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"]):
        registry.register_crd(crd)
    for kind in ("PodMonitor", "ServiceMonitor"):
        obj = _by_kind(kind)
        assert registry.find_kind(obj["apiVersion"], kind) is not None
        assert validate_object(obj, registry) == [], kind


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, op = labels.get(expression["key"]), expression["operator"]
        if op == "In" and value not in expression["values"]:
            return False
        if op == "NotIn" and value in expression["values"]:
            return False
        if op == "Exists" and value is None:
            return False
    return True


def _meta_labels(pod_labels: dict[str, str]) -> dict[str, str]:
    """Prometheus' kubernetes_sd meta labels for a pod's labels (names sanitised to [a-zA-Z0-9_])."""
    return {
        f"__meta_kubernetes_pod_label_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v for k, v in pod_labels.items()
    }


def _relabel(labels: dict[str, str], rules: list[dict]) -> dict[str, str]:
    """Prometheus `replace` relabelling: anchored regex (default (.*)) over ;-joined sources, $n in replacement."""
    out = dict(labels)
    for rule in rules:
        assert rule.get("action", "replace") == "replace", rule
        value = rule.get("separator", ";").join(out.get(s, "") for s in rule["sourceLabels"])
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if match is None:
            continue
        template = re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", rule.get("replacement", "$1"))
        result = match.expand(template)
        if result:
            out[rule["targetLabel"]] = result
        else:
            out.pop(rule["targetLabel"], None)
    return out


def _scrape(endpoint: dict, pod_labels: dict[str, str], metric: str) -> dict[str, str]:
    target = _relabel(_meta_labels(pod_labels), endpoint.get("relabelings", []))
    series = {"__name__": metric, **{k: v for k, v in target.items() if not k.startswith("__")}}
    return _relabel(series, endpoint.get("metricRelabelings", []))


def test_pod_monitor_selects_every_workload_shape_and_not_the_epp() -> None:
    selector = _by_kind("PodMonitor")["spec"]["selector"]
    assert _selects(selector, WORKLOAD_POD_LABELS)
    assert _selects(selector, PREFILL_POD_LABELS)
    for component in ("leader", "worker", "leader-prefill", "worker-prefill"):
        assert _selects(selector, {**WORKLOAD_POD_LABELS, "app.kubernetes.io/component":
                                   f"llminferenceservice-workload-{component}"})  # fmt: skip
    assert not _selects(selector, EPP_LABELS)


def test_service_monitor_selects_the_epp_service_with_a_token() -> None:
    monitor = _by_kind("ServiceMonitor")
    assert _selects(monitor["spec"]["selector"], EPP_LABELS)
    assert not _selects(monitor["spec"]["selector"], WORKLOAD_POD_LABELS)
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    secret = _by_kind("Secret")
    assert endpoint["authorization"]["credentials"]["name"] == secret["metadata"]["name"]
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.name"] == _by_kind("ServiceAccount")[
        "metadata"]["name"]  # fmt: skip


def test_scraped_vllm_series_get_kserve_names_and_llm_isvc_labels() -> None:
    [endpoint] = _by_kind("PodMonitor")["spec"]["podMetricsEndpoints"]
    series = _scrape(endpoint, PREFILL_POD_LABELS, "vllm:num_requests_running")
    assert series == {
        "__name__": "kserve_vllm:num_requests_running",
        "llm_isvc_name": "qwen",
        "llm_isvc_role": "prefill",
        "llm_isvc_component": "workload-prefill",
    }


def _openshift_queries() -> list[str]:
    dashboard = json.loads((REPO / "assets" / "dashboards" / "llmd-openshift.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


@pytest.mark.parametrize("source", ["vllm", "epp"])
def test_openshift_dashboard_reads_exactly_what_the_monitors_produce(source: str) -> None:
    lab = json.loads((REPO / "assets" / "dashboards" / "llmd-lab.json").read_text())
    lab_names = {m for p in lab["panels"] for t in p["targets"]
                 for m in re.findall(r"\b(?:vllm:|inference_)[a-z_:]+", t["expr"])}  # fmt: skip
    if source == "vllm":
        [endpoint] = _by_kind("PodMonitor")["spec"]["podMetricsEndpoints"]
        labels, names = WORKLOAD_POD_LABELS, {n for n in lab_names if n.startswith("vllm:")}
    else:
        [endpoint] = _by_kind("ServiceMonitor")["spec"]["endpoints"]
        labels, names = EPP_LABELS, {n for n in lab_names if n.startswith("inference_")}
    queries = "\n".join(_openshift_queries())
    for name in sorted(names):
        series = _scrape(endpoint, labels, name)
        assert series["__name__"] in queries, (
            f"{name} scrapes as {series['__name__']}, which the dashboard never reads"
        )
    if source == "vllm":
        assert "llm_isvc_name" in series and 'llm_isvc_name=~"$llm_isvc"' in queries
