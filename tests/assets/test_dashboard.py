"""The Grafana dashboards in assets/dashboards/: generated, parseable PromQL, and only metric names that exist.

Two variants come from one generator: ``kserve_``-prefixed names for OpenShift AI (KServe's PodMonitor renames
every series) and plain names for the local lab. Every expression must parse (Python's promql-parser, plus
Prometheus' own promtool when Debian's prometheus package is installed) and use only metric names that vLLM
or the llm-d endpoint picker expose — checked against vLLM's/GIE's catalogue and, where the simulators are
importable, against what the lab's simulated vLLM and EPP actually render.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import promql_parser
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "assets" / "dashboards"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m"}

# Exposition names (as a scrape sees them) from vLLM v1's PrometheusStatLogger and the GIE v1.0 EPP.
VLLM_METRICS = {
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc",
    "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:num_preemptions_total",
    "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total",
    "vllm:cache_config_info",
}  # fmt: skip
VLLM_HISTOGRAMS = {
    "vllm:time_to_first_token_seconds", "vllm:time_per_output_token_seconds", "vllm:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds", "vllm:request_prefill_time_seconds",
    "vllm:request_decode_time_seconds", "vllm:request_inference_time_seconds", "vllm:request_prompt_tokens",
    "vllm:request_generation_tokens", "vllm:iteration_tokens_total",
}  # fmt: skip
EPP_METRICS = {
    "inference_model_request_total", "inference_model_request_error_total", "inference_model_running_requests",
    "inference_pool_average_kv_cache_utilization", "inference_pool_average_queue_size", "inference_pool_ready_pods",
    "inference_pool_per_pod_queue_size", "inference_extension_prefix_indexer_size", "inference_extension_info",
}  # fmt: skip
EPP_HISTOGRAMS = {
    "inference_model_request_duration_seconds", "inference_model_request_sizes", "inference_model_response_sizes",
    "inference_model_input_tokens", "inference_model_output_tokens",
    "inference_model_normalized_time_per_output_token_seconds", "inference_extension_scheduler_e2e_duration_seconds",
    "inference_extension_plugin_duration_seconds", "inference_extension_prefix_indexer_hit_ratio",
    "inference_extension_prefix_indexer_hit_bytes",
}  # fmt: skip


def _with_series(histograms: set[str]) -> set[str]:
    return {f"{h}{suffix}" for h in histograms for suffix in ("_bucket", "_sum", "_count")}


KNOWN = VLLM_METRICS | EPP_METRICS | _with_series(VLLM_HISTOGRAMS) | _with_series(EPP_HISTOGRAMS)
SEED_PANELS = [
    "Time to first token", "Prefix-cache hit rate", "KV-cache use", "Queue depth", "Requests per pod",
    "Tokens per second",
]  # fmt: skip


def _generator():
    spec = importlib.util.spec_from_file_location("llmd_dashboard_generator", DASHBOARDS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()
VARIANTS = {v.file: v for v in GENERATOR.VARIANTS}


def _load(name: str) -> dict:
    return json.loads((DASHBOARDS / name).read_text())


def _expressions(dashboard: dict) -> list[tuple[str, str]]:
    return [(panel["title"], t["expr"]) for panel in dashboard["panels"] for t in panel["targets"]]


def _promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def _metric_names(node) -> set[str]:
    """Every vector selector's metric name in a parsed expression."""
    names: set[str] = set()
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            names.add(node.name)
        return names
    for attribute in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, (str, int, float)):
            names |= _metric_names(child)
    for child in getattr(node, "args", None) or []:
        names |= _metric_names(child)
    return names


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_committed_dashboard_matches_the_generator(name: str) -> None:
    committed = (DASHBOARDS / name).read_text()
    assert committed == GENERATOR.render(VARIANTS[name]), (
        f"run: python assets/dashboards/generate.py ({name} is stale)"
    )


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_expression_parses(name: str) -> None:
    for title, expr in _expressions(_load(name)):
        try:
            promql_parser.parse(_promql(expr))
        except ValueError as exc:
            pytest.fail(f"{name} / {title}: {exc}\n{expr}")


def test_promql_parser_rejects_a_broken_expression() -> None:
    """Guards the test above: the parser must actually reject bad PromQL."""
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(vllm:prompt_tokens_total[5m])")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_expression_passes_prometheus_promtool(name: str, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    rules = [
        {"record": f"dashboard:{i}", "expr": _promql(expr)}
        for i, (_, expr) in enumerate(_expressions(_load(name)))
    ]
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


def test_openshift_variant_uses_kserve_names_and_lab_variant_plain_names() -> None:
    for name, prefix in (("llmd-openshift.json", "kserve_"), ("llmd-lab.json", "")):
        for title, expr in _expressions(_load(name)):
            for metric in _metric_names(promql_parser.parse(_promql(expr))):
                assert metric.startswith(prefix), f"{name} / {title}: {metric}"
                plain = metric.removeprefix(prefix)
                assert not plain.startswith("kserve_"), f"{name} / {title}: {metric}"
                assert plain in KNOWN, f"{name} / {title}: {metric} is not a vLLM or EPP metric"


def test_both_variants_have_the_same_panels_and_differ_only_in_names() -> None:
    openshift, lab = _load("llmd-openshift.json"), _load("llmd-lab.json")
    assert [p["title"] for p in openshift["panels"]] == [p["title"] for p in lab["panels"]]
    for a, b in zip(openshift["panels"], lab["panels"], strict=True):
        names_a = {m.removeprefix("kserve_") for _, e in _expressions({"panels": [a]})
                   for m in _metric_names(promql_parser.parse(_promql(e)))}  # fmt: skip
        names_b = {
            m
            for _, e in _expressions({"panels": [b]})
            for m in _metric_names(promql_parser.parse(_promql(e)))
        }
        assert names_a == names_b, a["title"]


def test_dashboard_has_the_panels_the_seeds_describe() -> None:
    titles = [p["title"] for p in _load("llmd-lab.json")["panels"]]
    for panel in SEED_PANELS:
        assert panel in titles
    assert any(t.startswith("EPP:") for t in titles)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_panel_description_says_which_names_it_uses(name: str) -> None:
    world = "OpenShift AI" if "openshift" in name else "local lab"
    for panel in _load(name)["panels"]:
        description = panel["description"]
        assert world in description, panel["title"]
        for _, expr in _expressions({"panels": [panel]}):
            for metric in _metric_names(promql_parser.parse(_promql(expr))):
                assert metric in description, f"{panel['title']}: description does not name {metric}"


def _exposed(render: bytes) -> set[str]:
    from prometheus_client.parser import text_string_to_metric_families

    return {s.name for family in text_string_to_metric_families(render.decode()) for s in family.samples}


def test_lab_simulators_expose_every_metric_the_lab_dashboard_uses() -> None:
    from llmd_lab.sim.epp.metrics import EppMetrics
    from llmd_lab.sim.epp.types import Endpoint, EndpointMetrics
    from llmd_lab.sim.vllm.engine import EngineConfig, LLMEngine
    from llmd_lab.sim.vllm.metrics import PrometheusStatLogger
    from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model

    engine = LLMEngine(EngineConfig(model=resolve_model("Qwen/Qwen3-0.6B"), gpu=resolve_gpu("L4")), seed=0)
    exposed = _exposed(PrometheusStatLogger(engine, model_name="qwen").render())
    pods = [Endpoint("qwen-kserve-0", "ns", "127.1.0.2", 8000, metrics=EndpointMetrics(waiting_queue_size=1))]
    epp = EppMetrics("qwen-inference-pool", lambda: pods)
    epp.record_request("qwen", "qwen")
    epp.record_error("qwen", "500")
    epp.record_scheduler_duration(0.001)
    epp.record_prefix_match(16, 32)
    epp.refresh_pool_gauges()
    exposed |= _exposed(epp.render())
    used = {
        m
        for _, e in _expressions(_load("llmd-lab.json"))
        for m in _metric_names(promql_parser.parse(_promql(e)))
    }
    # The dashboard reads each generation's name with `or`; the lab must expose at least the current one.
    optional = {"vllm:time_per_output_token_seconds_bucket", "vllm:gpu_cache_usage_perc"}
    missing = sorted(used - exposed - optional)
    assert not missing, f"the lab's simulators do not expose {missing}"
