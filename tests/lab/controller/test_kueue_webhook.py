"""The step-08 seed's Kueue known issue: where a profile enforces it, RHOAI's Kueue label webhook denies an
LLMInferenceService without ``kueue.x-k8s.io/queue-name`` in a Kueue-managed namespace; with the label the
service is created and its pods are admitted against the LocalQueue's ClusterQueue quota."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from labhelpers import Lab, eventually, lab_connection, running_lab

from llmd_lab import deploy, doctor, manifests
from llmd_lab.lab.controller import controller_manager as controller_components
from llmd_lab.lab.controller.kueue_webhook import KueueLabelValidator
from llmd_lab.lab.controller.testing import make_ctx
from llmd_lab.lab.profiles import load_profile

PROFILE = Path(__file__).parents[2] / "data" / "profiles" / "rhoai-3.0-kueue-enforced.yaml"
NS = "private-ai"
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1alpha1", "llminferenceservices"
DENIED = ('admission webhook "kserve-llmisvc-kueuelabels-validator.opendatahub.io" denied the request: '
          'Kueue label validation failed: missing required label "kueue.x-k8s.io/queue-name"')


def test_the_profile_flag_decides_whether_the_webhook_runs(tmp_path: Path) -> None:
    default = load_profile("rhoai-3.0")
    assert not any(isinstance(c, KueueLabelValidator) for c in controller_components(make_ctx(tmp_path, default)))
    enforced = load_profile(PROFILE)
    assert enforced.issue("kueueRequiresQueueLabel")
    assert any(isinstance(c, KueueLabelValidator) for c in controller_components(make_ctx(tmp_path, enforced)))


def _service(name: str, **kw: Any) -> dict:
    return manifests.llm_inference_service(name, "hf://Qwen/Qwen3-0.6B", model_name="Qwen/Qwen3-0.6B",
                                           gpu="g6.4xlarge", scheduler=None, **kw)


def _refusal(call) -> dict:
    with pytest.raises(kubernetes.client.ApiException) as err:
        call()
    return json.loads(err.value.body)


@pytest.fixture(scope="module")
def enforced_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("kueue-lab"), "--profile", str(PROFILE), "--time-scale", "50") as lab:
        yield lab


@pytest.fixture(scope="module")
def api(enforced_lab: Lab) -> Iterator[kubernetes.client.ApiClient]:
    client = enforced_lab.api_client()
    yield client
    client.close()


@pytest.fixture
def conn(enforced_lab: Lab):
    with lab_connection(enforced_lab, NS) as c:
        yield c


def test_without_the_label_the_service_is_denied_and_nothing_is_created(api, conn) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    body = _service("unlabelled", namespace=NS)
    for dry_run in ("All", None):
        status = _refusal(lambda dry_run=dry_run: custom.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, body, dry_run=dry_run))
        assert (status["code"], status["reason"], status["message"]) == (403, "Forbidden", DENIED)
    assert _refusal(lambda: custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "unlabelled"))["code"] == 404
    empty = _service("unlabelled", namespace=NS, labels={"kueue.x-k8s.io/queue-name": ""})
    status = _refusal(lambda dry_run=dry_run: custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, empty))
    assert status["message"].endswith('label "kueue.x-k8s.io/queue-name" is set but empty')

    # the library says what to change, and doctor points at the label
    with pytest.raises(deploy.DeployError, match=r"missing required label.*Fix: add the label"):
        deploy.apply(conn, body)
    report = doctor.run(conn, "unlabelled", probe=False)
    rows = {row["check"]: row for _, row in report.iterrows()}
    assert rows["LLMInferenceService"]["status"] == "fail"
    kueue = rows["Kueue queue label"]
    assert kueue["status"] == "warn" and "kueue.openshift.io/managed=true" in kueue["evidence"]
    assert "missing required label" in kueue["evidence"]
    assert "default, llmd" in kueue["fix"]


def test_namespaces_not_managed_by_kueue_are_not_checked(api) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "scratch"}})
    custom = kubernetes.client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "scratch", PLURAL,
                                                     _service("free", namespace="scratch"), dry_run="All")
    assert created["metadata"]["name"] == "free"


def test_with_the_label_the_service_is_admitted_and_kueue_admits_its_pod(api) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    core = kubernetes.client.CoreV1Api(api)
    body = _service("labelled", namespace=NS, queue="llmd")
    created = custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
    try:
        assert created["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "llmd"

        def bound_pods():
            pods = core.list_namespaced_pod(NS, label_selector=doctor.workload_selector("labelled")).items
            return [p for p in pods if p.spec.node_name]

        pod = eventually(bound_pods, 60.0, "the labelled service's pod admitted by Kueue and bound")[0]
        assert pod.metadata.labels["kueue.x-k8s.io/queue-name"] == "llmd"
        # removing the label is an edit the webhook refuses too; the stored service keeps it
        status = _refusal(lambda: custom.patch_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, "labelled", {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": None}}}))
        assert status["code"] == 403 and status["message"] == DENIED
        stored = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "labelled")
        assert stored["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "llmd"
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "labelled")
