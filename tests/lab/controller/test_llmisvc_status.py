"""Condition aggregation and URL discovery as KServe computes them."""

from __future__ import annotations

from llmd_lab.lab.controller.llmisvc.status import (
    Cond,
    aggregate,
    discover_urls,
    merge_conditions,
    ready,
    route_condition,
    workload_condition,
)

GATEWAY = {
    "metadata": {"name": "openshift-ai-inference", "namespace": "openshift-ingress"},
    "spec": {"listeners": [{"name": "http", "port": 18080, "protocol": "HTTP"}]},
    "status": {"addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
               "conditions": [{"type": "Programmed", "status": "True"}]},
}
ROUTE = {
    "metadata": {"name": "m-kserve-route"},
    "spec": {"rules": [
        {"backendRefs": [{"kind": "InferencePool", "name": "p"}],
         "matches": [{"path": {"value": "/ns/m/v1/completions"}}]},
        {"backendRefs": [{"kind": "Service", "name": "s"}], "matches": [{"path": {"value": "/ns/m"}}]},
    ]},
}


def test_url_from_gateway_address_and_shortest_service_path() -> None:
    assert discover_urls(GATEWAY, ROUTE) == ["http://127.0.0.1:18080/ns/m"]
    https = {**GATEWAY, "spec": {"listeners": [{"port": 443, "protocol": "HTTPS", "hostname": "*.apps.example.com"}]}}
    assert discover_urls(https, ROUTE) == ["https://inference.apps.example.com/ns/m"]
    assert discover_urls(None, ROUTE) == []


def test_workload_condition_from_deployment_available() -> None:
    assert workload_condition("MainWorkloadReady", {"status": {}}) == Cond(
        "MainWorkloadReady", "False", "Progressing", "")
    dep = {"status": {"conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                                      "message": "Deployment does not have minimum availability."}]}}
    c = workload_condition("MainWorkloadReady", dep)
    assert (c.status, c.reason) == ("False", "MinimumReplicasUnavailable")
    dep["status"]["conditions"][0]["status"] = "True"
    assert workload_condition("MainWorkloadReady", dep).ok


def test_ready_needs_workloads_and_router() -> None:
    workloads = aggregate("WorkloadsReady", [Cond("MainWorkloadReady", "True"),
                                             Cond("PrefillWorkloadReady", "False", "Progressing", "waiting")])
    assert (workloads.status, workloads.reason) == ("False", "Progressing")
    router = aggregate("RouterReady", [Cond("GatewaysReady", "True"), route_condition(None, True)])
    assert router.reason == "HTTPRoutesNotReady"
    r = ready(workloads, router)
    assert (r.status, r.reason) == ("False", "Progressing")
    ok = ready(aggregate("WorkloadsReady", [Cond("MainWorkloadReady", "True")]),
               aggregate("RouterReady", [Cond("GatewaysReady", "True")]))
    assert ok.ok


def test_transition_time_kept_while_status_holds() -> None:
    first = merge_conditions(None, [Cond("Ready", "False", "Progressing")], "t1")
    second = merge_conditions(first, [Cond("Ready", "False", "Progressing", "still")], "t2")
    assert second[0]["lastTransitionTime"] == "t1"
    third = merge_conditions(second, [Cond("Ready", "True")], "t3")
    assert third[0]["lastTransitionTime"] == "t3"
