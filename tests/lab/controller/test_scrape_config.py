"""The generated Prometheus config follows KServe's monitors: workload pods on their vLLM port, the EPP on
9090, kserve_ renaming and llm_isvc_* labels."""

from __future__ import annotations

from llmd_lab.lab.controller.monitoring import scrape_config


def pod(name: str, ip: str, component: str, role: str | None = None, port: int = 8000) -> dict:
    labels = {"app.kubernetes.io/component": component, "app.kubernetes.io/name": "m",
              "app.kubernetes.io/part-of": "llminferenceservice"}
    if component.startswith("llminferenceservice-workload"):
        labels["kserve.io/component"] = "workload"
    if role:
        labels["llm-d.ai/role"] = role
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels},
            "spec": {"containers": [{"name": "main", "ports": [{"containerPort": port}]}]},
            "status": {"podIP": ip}}


def test_targets_and_relabelling() -> None:
    config = scrape_config([
        pod("m-kserve-a", "127.1.0.5", "llminferenceservice-workload", "decode", port=8001),
        pod("m-kserve-prefill-b", "127.1.0.6", "llminferenceservice-workload-prefill", "prefill"),
        pod("m-kserve-router-scheduler-c", "127.1.0.7", "llminferenceservice-router-scheduler"),
        {**pod("pending", "", "llminferenceservice-workload", "both"), "status": {}},
    ], interval="2s")
    vllm, epp = config["scrape_configs"]
    assert [t["targets"] for t in vllm["static_configs"]] == [["127.1.0.5:8001"], ["127.1.0.6:8000"]]
    assert vllm["static_configs"][1]["labels"] == {"namespace": "ns", "pod": "m-kserve-prefill-b",
                                                   "llm_isvc_name": "m", "llm_isvc_role": "prefill",
                                                   "llm_isvc_component": "workload-prefill"}
    assert epp["static_configs"][0]["targets"] == ["127.1.0.7:9090"]
    assert vllm["metric_relabel_configs"][0]["replacement"] == "kserve_$1"
    assert config["global"]["scrape_interval"] == "2s" and config["global"]["scrape_timeout"] == "1800ms"
    assert scrape_config([], rename=False)["scrape_configs"][0]["metric_relabel_configs"] == []
