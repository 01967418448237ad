"""Generates the workshop's Grafana dashboard in two variants from one panel list, so they cannot drift.

* ``llmd-openshift.json``: the ``kserve_``-prefixed names that OpenShift AI's PodMonitor/ServiceMonitor produce
  (KServe renames every scraped series to ``kserve_<name>`` and adds ``llm_isvc_name``), for the cluster's
  Prometheus / Thanos.
* ``llmd-lab.json``: vLLM's and the EPP's own names, for a Prometheus scraping the local lab's pods directly
  (its scrape config sets the ``namespace`` and ``pod`` target labels).

Run ``python assets/dashboards/generate.py`` after editing; tests/assets/test_dashboard.py fails when the
committed JSON differs from what this script writes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Variant:
    """How one world names and labels the series."""

    file: str
    title: str
    uid: str
    prefix: str  # prepended to every metric name
    vllm_selector: str  # label matchers for vLLM series
    epp_selector: str  # label matchers for EPP series
    where: str  # sentence for panel descriptions
    variables: list[dict] = field(default_factory=list)


def _query_variable(name: str, label: str, query: str, *, multi: bool) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": multi,
        "multi": multi,
        "allValue": ".*" if multi else None,
        "sort": 1,
    }


DATASOURCE_VARIABLE = {
    "name": "datasource",
    "label": "Prometheus",
    "type": "datasource",
    "query": "prometheus",
    "refresh": 1,
}

OPENSHIFT = Variant(
    file="llmd-openshift.json",
    title="llm-d workshop (OpenShift AI, kserve_ metrics)",
    uid="llmd-workshop-openshift",
    prefix="kserve_",
    vllm_selector='namespace="$namespace", llm_isvc_name=~"$llm_isvc"',
    epp_selector='namespace="$namespace"',
    where="OpenShift AI: kserve_-prefixed names from KServe's PodMonitor/ServiceMonitor",
    variables=[
        DATASOURCE_VARIABLE,
        _query_variable(
            "namespace", "Namespace", "label_values(kserve_vllm:num_requests_running, namespace)", multi=False
        ),
        _query_variable(
            "llm_isvc",
            "LLMInferenceService",
            'label_values(kserve_vllm:num_requests_running{namespace="$namespace"}, llm_isvc_name)',
            multi=True,
        ),
    ],
)

LAB = Variant(
    file="llmd-lab.json",
    title="llm-d workshop (local lab, plain metric names)",
    uid="llmd-workshop-lab",
    prefix="",
    vllm_selector='namespace=~"$namespace", model_name=~"$model"',
    epp_selector='namespace=~"$namespace"',
    where="local lab: vLLM's and the EPP's own names, scraped from the simulated pods",
    variables=[
        DATASOURCE_VARIABLE,
        _query_variable(
            "namespace", "Namespace", "label_values(vllm:num_requests_running, namespace)", multi=True
        ),
        _query_variable(
            "model",
            "Model",
            'label_values(vllm:num_requests_running{namespace=~"$namespace"}, model_name)',
            multi=True,
        ),
    ],
)


@dataclass(frozen=True)
class Panel:
    """One panel: targets are (legend, PromQL template) pairs; {m:NAME} marks a metric name, {v}/{e} selectors."""

    title: str
    unit: str
    what: str  # what the panel tells you, for the description
    targets: list[tuple[str, str]]
    kind: str = "timeseries"
    width: int = 12


def _ttft(q: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({{m:vllm:time_to_first_token_seconds_bucket}}{{{{v}}}}[{RATE}])))"


def _itl(q: str) -> str:
    # vLLM 0.11 renamed time_per_output_token to inter_token_latency; `or` serves both generations.
    return (
        f"histogram_quantile({q}, sum by (le) (rate({{m:vllm:inter_token_latency_seconds_bucket}}{{{{v}}}}[{RATE}]))"
        f" or sum by (le) (rate({{m:vllm:time_per_output_token_seconds_bucket}}{{{{v}}}}[{RATE}])))"
    )


PANELS = [
    Panel(
        "Time to first token",
        "s",
        "TTFT percentiles over all pods; what a user waits before text appears",
        [("p50", _ttft("0.5")), ("p95", _ttft("0.95")), ("p99", _ttft("0.99"))],
    ),
    Panel(
        "Inter-token latency",
        "s",
        "time between streamed tokens (decode speed), p50 and p95",
        [("p50", _itl("0.5")), ("p95", _itl("0.95"))],
    ),
    Panel(
        "Prefix-cache hit rate",
        "percentunit",
        "share of prompt tokens found in the prefix cache (hits / queries, both counted in tokens), overall and per pod",
        [
            (
                "all pods",
                f"sum(rate({{m:vllm:prefix_cache_hits_total}}{{{{v}}}}[{RATE}]))"
                f" / sum(rate({{m:vllm:prefix_cache_queries_total}}{{{{v}}}}[{RATE}]))",
            ),
            (
                "{{pod}}",
                f"sum by (pod) (rate({{m:vllm:prefix_cache_hits_total}}{{{{v}}}}[{RATE}]))"
                f" / sum by (pod) (rate({{m:vllm:prefix_cache_queries_total}}{{{{v}}}}[{RATE}]))",
            ),
        ],
    ),
    Panel(
        "KV-cache use",
        "percentunit",
        "share of each pod's KV-cache blocks in use (%); above 80 % expect preemptions (older vLLM: gpu_cache_usage_perc)",
        [
            (
                "{{pod}}",
                "max by (pod) ({m:vllm:kv_cache_usage_perc}{{v}})"
                " or max by (pod) ({m:vllm:gpu_cache_usage_perc}{{v}})",
            )
        ],
    ),
    Panel(
        "Queue depth",
        "short",
        "requests waiting for a batch slot and requests running, per pod",
        [
            ("waiting {{pod}}", "sum by (pod) ({m:vllm:num_requests_waiting}{{v}})"),
            ("running {{pod}}", "sum by (pod) ({m:vllm:num_requests_running}{{v}})"),
        ],
    ),
    Panel(
        "Requests per pod",
        "reqps",
        "finished requests per second per pod: how the endpoint picker spreads load",
        [("{{pod}}", f"sum by (pod) (rate({{m:vllm:request_success_total}}{{{{v}}}}[{RATE}]))")],
    ),
    Panel(
        "Tokens per second",
        "short",
        "prompt tokens processed and tokens generated per second, all pods",
        [
            ("prompt", f"sum(rate({{m:vllm:prompt_tokens_total}}{{{{v}}}}[{RATE}]))"),
            ("generated", f"sum(rate({{m:vllm:generation_tokens_total}}{{{{v}}}}[{RATE}]))"),
        ],
    ),
    Panel(
        "Preemptions",
        "short",
        "requests preempted per second because the KV cache ran out",
        [("{{pod}}", f"sum by (pod) (rate({{m:vllm:num_preemptions_total}}{{{{v}}}}[{RATE}]))")],
    ),
    Panel(
        "EPP: pool as the picker sees it",
        "short",
        "the endpoint picker's averages over the pool's pods, and how many pods it considers ready",
        [
            (
                "avg KV-cache use {{name}}",
                "max by (name) ({m:inference_pool_average_kv_cache_utilization}{{e}})",
            ),
            ("avg queue {{name}}", "max by (name) ({m:inference_pool_average_queue_size}{{e}})"),
            ("ready pods {{name}}", "max by (name) ({m:inference_pool_ready_pods}{{e}})"),
        ],
    ),
    Panel(
        "EPP: requests routed",
        "reqps",
        "requests per second the endpoint picker scheduled, and its errors",
        [
            ("requests", f"sum(rate({{m:inference_model_request_total}}{{{{e}}}}[{RATE}]))"),
            ("errors", f"sum(rate({{m:inference_model_request_error_total}}{{{{e}}}}[{RATE}])) or vector(0)"),
        ],
    ),
    Panel(
        "EPP: scheduling latency",
        "s",
        "time the endpoint picker spends choosing a pod (filter, score, pick), p99",
        [
            (
                "p99",
                f"histogram_quantile(0.99, sum by (le) "
                f"(rate({{m:inference_extension_scheduler_e2e_duration_seconds_bucket}}{{{{e}}}}[{RATE}])))",
            )
        ],
    ),
    Panel(
        "EPP: approximate prefix match",
        "percentunit",
        "mean share of each prompt the approximate prefix index matched on the chosen pod",
        [
            (
                "mean match",
                f"sum(rate({{m:inference_extension_prefix_indexer_hit_ratio_sum}}{{{{e}}}}[{RATE}]))"
                f" / sum(rate({{m:inference_extension_prefix_indexer_hit_ratio_count}}{{{{e}}}}[{RATE}]))",
            )
        ],
    ),
]


def render_expr(template: str, variant: Variant) -> str:
    """Fill a panel template: {m:NAME} → prefixed name, {v}/{e} → the variant's selectors."""
    out, i = [], 0
    while i < len(template):
        if template.startswith("{m:", i):
            end = template.index("}", i)
            out.append(variant.prefix + template[i + 3 : end])
            i = end + 1
        elif template.startswith("{{v}}", i):
            out.append("{" + variant.vllm_selector + "}")
            i += 5
        elif template.startswith("{{e}}", i):
            out.append("{" + variant.epp_selector + "}")
            i += 5
        elif template.startswith("{v}", i):
            out.append("{" + variant.vllm_selector + "}")
            i += 3
        elif template.startswith("{e}", i):
            out.append("{" + variant.epp_selector + "}")
            i += 3
        else:
            out.append(template[i])
            i += 1
    return "".join(out)


def metric_names(template: str) -> list[str]:
    """The unprefixed metric names a template uses."""
    names, i = [], 0
    while (i := template.find("{m:", i)) >= 0:
        end = template.index("}", i)
        names.append(template[i + 3 : end])
        i = end + 1
    return names


def build(variant: Variant) -> dict:
    panels = []
    for index, panel in enumerate(PANELS):
        names = sorted({variant.prefix + n for _, t in panel.targets for n in metric_names(t)})
        panels.append(
            {
                "id": index + 1,
                "type": panel.kind,
                "title": panel.title,
                "description": f"{panel.what}. Metrics ({variant.where}): {', '.join(names)}.",
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": panel.width, "x": (index % 2) * 12, "y": (index // 2) * 8},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {
                    "legend": {"displayMode": "list", "placement": "bottom"},
                    "tooltip": {"mode": "multi"},
                },
                "targets": [
                    {
                        "refId": chr(ord("A") + n),
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                        "expr": render_expr(template, variant),
                        "legendFormat": legend,
                    }
                    for n, (legend, template) in enumerate(panel.targets)
                ],
            }
        )
    return {
        "title": variant.title,
        "uid": variant.uid,
        "description": f"llm-d workshop panels ({variant.where}). Generated by assets/dashboards/generate.py.",
        "tags": ["llm-d", "vllm", "workshop"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "timezone": "browser",
        "templating": {"list": variant.variables},
        "annotations": {"list": []},
        "panels": panels,
    }


VARIANTS = [OPENSHIFT, LAB]


def render(variant: Variant) -> str:
    return json.dumps(build(variant), indent=2) + "\n"


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else HERE
    for variant in VARIANTS:
        (out_dir / variant.file).write_text(render(variant))
        print(f"wrote {out_dir / variant.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
