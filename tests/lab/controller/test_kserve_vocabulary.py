"""The lab renders exactly what the library predicts from the one KServe vocabulary (``llmd_lab.kserve``).

The library (``manifests`` builds the service, ``doctor`` selects its pods), the lab's controller and the
simulated EPP all read names, labels, selectors and the injected EPP config from ``llmd_lab.kserve``; this
test renders services the library builds and checks every prediction against the lab's children.
Mirrors red-hat-data-services/kserve@rhoai-3.0 pkg/controller/llmisvc/{scheduler.go,workload.go}.
"""

from __future__ import annotations

import pytest

from llmd_lab import doctor, manifests
from llmd_lab.kserve import epp, labels, names
from llmd_lab.kserve.names import child_name
from llmd_lab.lab.apiserver.selectors import parse_label_selector
from llmd_lab.lab.controller.llmisvc.children import desired_children
from llmd_lab.lab.controller.llmisvc.presets import combine
from llmd_lab.sim.epp.config import load_config

LONG = "a-very-long-service-name-that-pushes-every-child-past-63-chars"


def _render(svc: dict, find_config) -> dict[tuple[str, str], dict]:
    svc = manifests.with_namespace(svc, "private-ai")
    svc["metadata"]["uid"] = "uid-1"
    return {(o["kind"], o["metadata"]["name"]): o for o in desired_children(svc, combine(svc, find_config))}


def _selects(selector: str, obj_labels: dict) -> bool:
    return all(r.matches(obj_labels) for r in parse_label_selector(selector))


def _pod_labels(children: dict, kind: str, name: str) -> dict:
    return children[(kind, name)]["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("name", ["qwen", LONG])
def test_names_labels_and_selectors_agree(name, find_config) -> None:
    children = _render(manifests.llm_inference_service(name, "hf://Qwen/Qwen3-0.6B"), find_config)
    for suffix, kind in [(names.WORKLOAD, "Deployment"), (names.WORKLOAD_SERVICE, "Service"),
                         (names.SCHEDULER, "Deployment"), (names.EPP_SERVICE, "Service"),
                         (names.INFERENCE_POOL, "InferencePool")]:
        assert (kind, child_name(name, suffix)) in children
    assert all(len(n) <= names.LONGEST for _, n in children)
    vllm = _pod_labels(children, "Deployment", child_name(name, names.WORKLOAD))
    epp_pod = _pod_labels(children, "Deployment", child_name(name, names.SCHEDULER))
    assert _selects(doctor.workload_selector(name), vllm) and _selects(doctor.role_selector(name, "both"), vllm)
    assert not _selects(doctor.workload_selector(name), epp_pod)
    assert _selects(doctor.scheduler_selector(name), epp_pod) and not _selects(doctor.scheduler_selector(name), vllm)
    assert _selects(doctor.all_pods_selector(name), vllm) and _selects(doctor.all_pods_selector(name), epp_pod)
    pool = children[("InferencePool", child_name(name, names.INFERENCE_POOL))]
    assert pool["spec"]["selector"] == labels.pool_selector(name)
    args = children[("Deployment", child_name(name, names.SCHEDULER))]["spec"]["template"]["spec"]["containers"][0][
        "args"]
    assert args[args.index("--pool-name") + 1] == child_name(name, names.INFERENCE_POOL)


def test_prefill_decode_roles_and_pd_config(find_config) -> None:
    svc = manifests.llm_inference_service("pd", "hf://Qwen/Qwen3-0.6B", prefill=manifests.Prefill(replicas=1),
                                          scheduler=None)
    children = _render(svc, find_config)
    decode = _pod_labels(children, "Deployment", child_name("pd", names.WORKLOAD))
    prefill = _pod_labels(children, "Deployment", child_name("pd", names.PREFILL_WORKLOAD))
    assert _selects(doctor.role_selector("pd", "decode"), decode)
    assert _selects(doctor.role_selector("pd", "prefill"), prefill)
    assert not _selects(doctor.role_selector("pd", "both"), decode)
    args = children[("Deployment", child_name("pd", names.SCHEDULER))]["spec"]["template"]["spec"]["containers"][0][
        "args"]
    assert args[args.index("--config-text") + 1] == epp.PD_CONFIG_TEXT == epp.scheduler_config_text(True)
    assert load_config(args[args.index("--config-text") + 1]).plugins_of_type("pd-profile-handler")


def test_injected_default_config_is_what_the_simulated_epp_loads(find_config) -> None:
    svc = manifests.llm_inference_service("plain", "hf://Qwen/Qwen3-0.6B", scheduler=None, workarounds=False)
    children = _render(svc, find_config)
    args = children[("Deployment", child_name("plain", names.SCHEDULER))]["spec"]["template"]["spec"]["containers"][
        0]["args"]
    text = args[args.index("--config-text") + 1]
    assert text == epp.DEFAULT_CONFIG_TEXT
    assert set(load_config(text).plugins) == {"single-profile-handler", "prefix-cache-scorer", "load-aware-scorer",
                                              "max-score-picker"}


def test_epp_service_has_only_the_ports_kserve_renders(find_config) -> None:
    """scheduler.go expectedSchedulerService: grpc, grpc-health, metrics — never a KV-event port."""
    children = _render(manifests.llm_inference_service("qwen", "hf://Qwen/Qwen3-0.6B"), find_config)
    ports = children[("Service", child_name("qwen", names.EPP_SERVICE))]["spec"]["ports"]
    assert [p["name"] for p in ports] == sorted(epp.EPP_SERVICE_PORT_NAMES)
    assert 5557 not in {p["port"] for p in ports}
