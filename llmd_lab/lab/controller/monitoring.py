"""A Prometheus scrape config for the lab, equivalent to what RHOAI's monitoring stack derives from KServe's
PodMonitor ``kserve-llm-isvc-vllm-engine`` and ServiceMonitor ``kserve-llm-isvc-scheduler``.

Targets are the workload pods' IPs (vLLM port) and the EPP pods' metrics port; every series is renamed to
``kserve_<name>`` and gets ``llm_isvc_name``/``llm_isvc_role``/``llm_isvc_component`` labels, as the
monitors' relabelling does on the cluster. Debian's ``prometheus`` can run it unmodified on 127.0.0.1:

    python -m llmd_lab.lab.controller.monitoring --kubeconfig ~/.llmd-lab/kubeconfig -o prometheus.yml
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from llmd_lab.lab.apiserver.store import Store

WORKLOAD_COMPONENTS = {
    "llminferenceservice-workload", "llminferenceservice-workload-prefill", "llminferenceservice-workload-worker",
    "llminferenceservice-workload-leader", "llminferenceservice-workload-leader-prefill",
    "llminferenceservice-workload-worker-prefill",
}
SCHEDULER_COMPONENT = "llminferenceservice-router-scheduler"
RENAME = [{"source_labels": ["__name__"], "regex": "(.*)", "target_label": "__name__", "replacement": "kserve_$1"}]


def _vllm_port(pod: Mapping[str, Any]) -> int:
    for c in pod["spec"].get("containers") or []:
        if c.get("name") == "main":
            for p in c.get("ports") or []:
                return int(p["containerPort"])
    return 8000


def _labels(pod: Mapping[str, Any]) -> dict[str, str]:
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    return {
        "namespace": meta.get("namespace", ""),
        "pod": meta["name"],
        "llm_isvc_name": labels.get("app.kubernetes.io/name", ""),
        "llm_isvc_role": labels.get("llm-d.ai/role", ""),
        "llm_isvc_component": labels.get("app.kubernetes.io/component", "").removeprefix("llminferenceservice-"),
    }


def scrape_config(pods: Iterable[Mapping[str, Any]], *, interval: str = "5s", rename: bool = True) -> dict:
    """The ``prometheus.yml`` dict for the given pods (only running LLMInferenceService pods with an IP)."""
    vllm, epp = [], []
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        component = (pod["metadata"].get("labels") or {}).get("app.kubernetes.io/component", "")
        if not ip or pod["metadata"].get("deletionTimestamp"):
            continue
        if component in WORKLOAD_COMPONENTS and (pod["metadata"].get("labels") or {}).get("kserve.io/component"):
            vllm.append({"targets": [f"{ip}:{_vllm_port(pod)}"], "labels": _labels(pod)})
        elif component == SCHEDULER_COMPONENT:
            epp.append({"targets": [f"{ip}:9090"], "labels": _labels(pod)})
    relabel = RENAME if rename else []
    # Prometheus durations are whole numbers of a unit ("1.8s" is rejected): 90 % of the interval, in ms
    timeout = interval if not interval.endswith("s") or float(interval[:-1]) <= 1 else f"{round(float(interval[:-1]) * 900)}ms"
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": timeout},
        "scrape_configs": [
            # KServe's PodMonitor: https, insecureSkipVerify (vLLM serves the SAN-less workload certificate)
            {"job_name": "kserve-llm-isvc-vllm-engine", "metrics_path": "/metrics", "scheme": "https",
             "tls_config": {"insecure_skip_verify": True},
             "static_configs": vllm, "metric_relabel_configs": relabel},
            {"job_name": "kserve-llm-isvc-scheduler", "metrics_path": "/metrics", "scheme": "http",
             "static_configs": epp, "metric_relabel_configs": relabel},
        ],
    }


async def scrape_config_from_store(store: Store, **kwargs: Any) -> dict:
    pods, _ = await store.list("v1", "Pod", label_selector="app.kubernetes.io/part-of=llminferenceservice")
    return scrape_config(pods, **kwargs)


def scrape_config_from_cluster(kubeconfig: str | None = None, **kwargs: Any) -> dict:
    """Same, read through the Kubernetes API (the lab's kubeconfig, or the current context)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    api = client.ApiClient(configuration)
    core = client.CoreV1Api(api)
    pods = core.list_pod_for_all_namespaces(label_selector="app.kubernetes.io/part-of=llminferenceservice")
    return scrape_config([api.sanitize_for_serialization(p) for p in pods.items], **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmd_lab.lab.controller.monitoring",
                                     description="write a Prometheus config that scrapes the lab's vLLM and EPP pods")
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("-o", "--output", default="-")
    parser.add_argument("--interval", default="5s")
    parser.add_argument("--no-rename", action="store_true", help="keep vLLM's names (no kserve_ prefix)")
    args = parser.parse_args(argv)
    text = yaml.safe_dump(scrape_config_from_cluster(args.kubeconfig, interval=args.interval,
                                                     rename=not args.no_rename), sort_keys=False)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
