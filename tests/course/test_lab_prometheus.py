"""The lab serves the shipped dashboard's queries: ``llmd-lab prometheus`` scrapes the lab's pods as OpenShift AI's
PodMonitor/ServiceMonitor do (``kserve_`` names, ``llm_isvc_*`` labels), so every panel of
``assets/dashboards/llmd-openshift.json`` — the dashboard notebook 04 links on a cluster — returns data."""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from labhelpers import Lab, eventually, lab_connection, running_lab

from llmd_lab import deploy, manifests
from llmd_lab.lab import prometheus

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "assets" / "dashboards" / "llmd-openshift.json"
MODEL, NS = "Qwen/Qwen3-0.6B", "private-ai"
MAX_REQUESTS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard_queries(namespace: str) -> list[tuple[str, str]]:
    """Every PromQL of the dashboard with its variables filled as Grafana would for one project:
    the panel targets, and the template variables' ``label_values(<series>, <label>)`` series."""
    dashboard = json.loads(DASHBOARD.read_text())
    values = {"$__rate_interval": "30s", "$namespace": namespace, "$llm_isvc": ".*"}

    def fill(expr: str) -> str:
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        return expr

    out = [(f"{p['title']} [{t['legendFormat']}]", fill(t["expr"])) for p in dashboard["panels"] for t in p["targets"]]
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable.get("definition", ""))
        if match:
            out.append((f"variable {variable['name']}", f"{fill(match.group(1))} and on() vector(1)"))
    return out


def unanswered(results: dict[str, list[dict]]) -> list[str]:
    """Queries with no series, or only NaN (a rate with no change in its window): an empty panel in Grafana."""
    return [title for title, series in results.items()
            if not series or all(math.isnan(float(s["value"][1])) for s in series)]


def test_config_follows_kserves_monitors_through_target_files(tmp_path: Path):
    config = prometheus.prometheus_config(tmp_path, interval="2s")
    vllm, epp = config["scrape_configs"]
    assert vllm["scheme"] == "https" and vllm["tls_config"] == {"insecure_skip_verify": True}
    assert vllm["metric_relabel_configs"][0]["replacement"] == "kserve_$1"
    assert [j["file_sd_configs"][0]["files"] for j in (vllm, epp)] == [
        [str(tmp_path / "kserve-llm-isvc-vllm-engine.json")], [str(tmp_path / "kserve-llm-isvc-scheduler.json")]]
    promtool = shutil.which("promtool")
    if promtool:  # Debian's prometheus package ships it
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus.write_targets(tmp_path, {"kserve-llm-isvc-vllm-engine": [], "kserve-llm-isvc-scheduler": []})
        checked = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                                 capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_target_files_are_rewritten_only_when_pods_change(tmp_path: Path):
    pod = {"metadata": {"name": "qwen-kserve-a", "namespace": NS,
                        "labels": {"app.kubernetes.io/component": "llminferenceservice-workload",
                                   "app.kubernetes.io/name": "qwen", "kserve.io/component": "workload"}},
           "spec": {"containers": [{"name": "main", "ports": [{"containerPort": 8000}]}]},
           "status": {"podIP": "127.1.0.9"}}  # fmt: skip
    groups = prometheus.target_groups([pod])
    assert prometheus.write_targets(tmp_path, groups) is True
    assert prometheus.write_targets(tmp_path, groups) is False
    written = json.loads((tmp_path / "kserve-llm-isvc-vllm-engine.json").read_text())
    assert written[0]["targets"] == ["127.1.0.9:8000"] and written[0]["labels"]["llm_isvc_name"] == "qwen"
    assert prometheus.write_targets(tmp_path, prometheus.target_groups([])) is True  # the pod went away


def test_the_query_check_catches_a_metric_the_lab_does_not_export():
    assert any("kserve_vllm:kv_cache_usage_perc" in q for _, q in dashboard_queries(NS))
    assert all("$" not in q for _, q in dashboard_queries(NS))  # every variable filled


@pytest.fixture(scope="module")
def served_lab(tmp_path_factory: pytest.TempPathFactory):
    with running_lab(tmp_path_factory.mktemp("prom-lab"), "--time-scale", "200") as lab:
        yield lab


@pytest.mark.slow
def test_every_panel_of_the_shipped_dashboard_answers_on_the_lab(served_lab: Lab, tmp_path: Path):
    if shutil.which("prometheus") is None:
        pytest.skip("Debian's prometheus is not installed (apt-get install prometheus); CI installs it")
    with lab_connection(served_lab, NS) as conn:
        deploy.apply(conn, manifests.llm_inference_service("qwen", f"hf://{MODEL}", model_name=MODEL, replicas=2,
                                                           gpu="g6.4xlarge", queue="llmd", max_model_len=4096))
        url = deploy.wait_ready(conn, "qwen", timeout_s=180, progress=False)["status"]["url"]
        try:
            with prometheus.LabPrometheus(tmp_path, port=_free_port(), interval="1s",
                                          kubeconfig=str(served_lab.kubeconfig)) as prom:
                up = f'up{{job=~"kserve-llm-isvc-.*", namespace="{NS}"}} == 1'
                eventually(lambda: len(prom.query(up)) == 3, 60, "two vLLM pods and the EPP scraped and up")
                served = f'sum(kserve_vllm:request_success_total{{namespace="{NS}"}})'
                system = "You are a concise assistant for a workshop on KV-cache-aware routing. " * 8
                # One request per scrape until every panel answers (bounded): a rate() needs two scrapes of a series
                # with a change between them, and some series (per-label histograms) appear only with a request.
                for n in range(MAX_REQUESTS):
                    seen = prom.query(served)
                    body = {"model": MODEL, "max_tokens": 8, "messages": [
                        {"role": "system", "content": system}, {"role": "user", "content": f"question {n}"}]}
                    assert httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).status_code == 200
                    eventually(lambda seen=seen: prom.query(served) != seen, 30, "Prometheus to scrape the request")
                    results = {title: prom.query(expr) for title, expr in dashboard_queries(NS)}
                    if n >= 2 and not unanswered(results):
                        break
        finally:
            deploy.delete(conn, "qwen", timeout_s=120)
    assert not unanswered(results), f"dashboard queries without data on the lab after {n + 1} requests: " \
        f"{unanswered(results)}"
