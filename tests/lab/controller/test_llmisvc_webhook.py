"""KServe's LLMInferenceService validating webhook: every rule, the real wording, 422 Invalid on create and update.

Mirrors red-hat-data-services/kserve@rhoai-3.0 pkg/controller/llmisvc/validation/llminferenceservice_validator.go
(webhook name from config/webhook/manifests.yaml).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.controller.llmisvc.webhook import LLMInferenceServiceValidator, validate
from llmd_lab.lab.controller.testing import make_ctx
from llmd_lab.lab.profiles import load_profile
from llmd_lab.lab.server import LabPaths, install_profile

pytestmark = pytest.mark.anyio
PREFIX = ('admission webhook "llminferenceservice.kserve-webhook-server.validator" denied the request: '
          'LLMInferenceService.serving.kserve.io "mistral-3-distributed" is invalid: ')
WORKER = ("when worker is specified, parallelism must be configured for either data parallelism or pipeline "
          "parallelism")


def _errors(spec_patch: dict, base: dict) -> list[str]:
    obj = copy.deepcopy(base)
    obj["spec"].update(spec_patch)
    return [str(e) for e in validate(obj)]


def test_parallelism_rules(step08) -> None:
    worker = {"containers": [{"name": "main"}]}
    assert _errors({"worker": worker}, step08) == [f"spec.worker: Invalid value: v1.PodSpec{{...}}: {WORKER}"]
    assert _errors({"worker": worker, "parallelism": {"tensor": 2}}, step08) == [
        f"spec.worker: Invalid value: v1.PodSpec{{...}}: {WORKER}"]
    assert _errors({"worker": worker, "parallelism": {"data": 4}}, step08) == [
        'spec.parallelism.dataLocal: Invalid value: "null": dataLocal must be set when data is set']
    assert _errors({"parallelism": {"dataLocal": 2}}, step08) == [
        'spec.parallelism.data: Invalid value: "null": data must be set when dataLocal is set']
    assert _errors({"worker": worker, "parallelism": {"pipeline": 2, "data": 2, "dataLocal": 1}}, step08) == [
        "spec.parallelism: Invalid value: v1alpha1.ParallelismSpec{...}: cannot set both pipeline parallelism and "
        "data parallelism (data or dataLocal) simultaneously"]
    assert _errors({"parallelism": {"pipeline": 0, "data": -1, "dataLocal": 0}}, step08) == [
        "spec.parallelism.pipeline: Invalid value: 0: pipeline parallelism must be greater than 0",
        "spec.parallelism.data: Invalid value: -1: data parallelism must be greater than 0",
        "spec.parallelism.dataLocal: Invalid value: 0: dataLocal parallelism must be greater than 0"]
    assert _errors({"parallelism": {"pipeline": -2}}, step08) == [
        "spec.parallelism.pipeline: Invalid value: -2: pipeline parallelism must be greater than 0"]
    assert _errors({"worker": worker, "parallelism": {"pipeline": 2}}, step08) == []
    assert _errors({"worker": worker, "parallelism": {"data": 2, "dataLocal": 1}}, step08) == []


def test_prefill_is_checked_too(pd) -> None:
    pd["spec"]["prefill"]["worker"] = {"containers": [{"name": "main"}]}
    assert [str(e) for e in validate(pd)] == [f"spec.prefill.worker: Invalid value: v1.PodSpec{{...}}: {WORKER}"]


def test_router_cross_field_rules(step08) -> None:
    http_refs = {"route": {"http": {"refs": [{"name": "mine"}], "spec": {"rules": []}}}, "gateway": {}}
    errs = _errors({"router": http_refs}, step08)
    assert errs == [
        "spec.router.route.http: Invalid value: v1alpha1.HTTPRouteSpec{...}: unsupported configuration: cannot use "
        "both custom HTTPRoute refs ('spec.router.route.http.refs') and an inline route spec "
        "('spec.router.route.http.spec'); choose one",
        'spec.router.route.http.refs: Invalid value: []v1.LocalObjectReference{v1.LocalObjectReference{Name:"mine"}}: '
        "unsupported configuration: custom HTTP routes ('spec.router.route.http.refs') cannot be used with a managed "
        "gateway ('spec.router.gateway'); either remove 'spec.router.route.http.refs' or set "
        "'spec.router.gateway.refs'"]
    parent_refs = {"route": {"http": {"spec": {"parentRefs": [{"name": "gw"}]}}}, "gateway": {"refs": [{"name": "gw"}]}}
    assert _errors({"router": parent_refs}, step08) == [
        "spec.router.route.http.spec: Invalid value: v1.HTTPRouteSpec{...}: unsupported configuration: managed HTTP "
        "route spec ('spec.router.route.http.spec') cannot be used with custom gateway refs "
        "('spec.router.gateway.refs'); either remove 'spec.router.gateway.refs' or "
        "'spec.router.route.http.spec.parentRefs'"]
    assert _errors({"router": {"route": {}, "gateway": {}, "scheduler": {}}}, step08) == []


@pytest.fixture
async def store(tmp_path: Path):
    profile = load_profile("rhoai-3.0")
    ctx = make_ctx(tmp_path, profile)
    await install_profile(ctx.store, profile, LabPaths(tmp_path))
    validator = LLMInferenceServiceValidator()
    await validator.start(ctx)
    yield ctx.store
    await validator.stop()


async def test_create_is_denied_with_422_and_nothing_is_stored(store, step08) -> None:
    del step08["metadata"]["uid"]
    step08["spec"]["parallelism"] = {"data": 4}
    with pytest.raises(ApiError) as err:
        await store.create(step08)
    assert (err.value.code, err.value.reason) == (422, "Invalid")
    assert err.value.message == (
        PREFIX + 'spec.parallelism.dataLocal: Invalid value: "null": dataLocal must be set when data is set')
    items, _ = await store.list("serving.kserve.io/v1alpha1", "LLMInferenceService", "private-ai")
    assert items == []


async def test_parallelism_size_is_immutable_on_update(store, step08) -> None:
    del step08["metadata"]["uid"]
    step08["spec"]["replicas"] = 1
    step08["spec"]["parallelism"] = {"tensor": 1, "data": 2, "dataLocal": 1}
    step08["spec"]["worker"] = {"containers": [{"name": "main"}]}
    live = await store.create(step08)
    live["spec"]["parallelism"] = {"tensor": 1, "data": 4, "dataLocal": 1}
    with pytest.raises(ApiError) as err:
        await store.update(live)
    assert err.value.message == PREFIX + (
        "spec.parallelism: Unsupported value: 4: total parallelism size is immutable, previous size 2, curr size 4")
    live["spec"]["parallelism"] = {"tensor": 2, "data": 4, "dataLocal": 2}  # same size 2: allowed
    await store.update(live)


async def test_several_errors_are_aggregated_and_the_crd_schema_answers_first(store, step08) -> None:
    del step08["metadata"]["uid"]
    step08["spec"]["parallelism"] = {"dataLocal": 1}
    step08["spec"]["router"] = {"route": {"http": {"refs": [{"name": "mine"}]}}, "gateway": {}}
    with pytest.raises(ApiError) as err:
        await store.create(copy.deepcopy(step08))
    assert err.value.message == PREFIX + (
        '[spec.router.route.http.refs: Invalid value: []v1.LocalObjectReference{v1.LocalObjectReference{Name:"mine"}}: '
        "unsupported configuration: custom HTTP routes ('spec.router.route.http.refs') cannot be used with a managed "
        "gateway ('spec.router.gateway'); either remove 'spec.router.route.http.refs' or set "
        "'spec.router.gateway.refs', "
        'spec.parallelism.data: Invalid value: "null": data must be set when dataLocal is set]')
    # the webhook's "must be greater than 0" rules sit behind the CRD's minimum: 1, which kube-apiserver checks first
    step08["spec"]["parallelism"] = {"pipeline": 0}
    with pytest.raises(ApiError) as err:
        await store.create(step08)
    assert "admission webhook" not in err.value.message and "spec.parallelism.pipeline" in err.value.message
