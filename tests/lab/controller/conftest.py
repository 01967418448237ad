"""Fixtures: the rhoai-3.0 KServe presets and the seed LLMInferenceServices."""

from __future__ import annotations

import copy

import labseeds
import pytest
import yaml

from llmd_lab.lab.profiles import load_profile

# The step-08 seed as the API server would hand it to the controller: with a uid for owner references.
STEP_08 = copy.deepcopy(labseeds.STEP_08)
STEP_08["metadata"]["uid"] = "0b7e3c2a-1111-2222-3333-444455556666"

PD = yaml.safe_load("""
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: my-model-pd, namespace: demo-llm, uid: u-pd}
spec:
  replicas: 2
  model: {uri: "oci://quay.io/redhat-ai-services/modelcar-catalog:llama-3-1-8b", name: meta-llama/Llama-3.1-8B-Instruct}
  router: {gateway: {}, route: {}, scheduler: {}}
  template:
    containers:
      - name: main
        resources: {limits: {nvidia.com/gpu: '1'}, requests: {nvidia.com/gpu: '1'}}
    tolerations: [{effect: NoSchedule, key: nvidia.com/gpu, operator: Exists}]
  prefill:
    replicas: 2
    template:
      containers:
        - name: main
          resources: {limits: {nvidia.com/gpu: '1'}, requests: {nvidia.com/gpu: '1'}}
      tolerations: [{effect: NoSchedule, key: nvidia.com/gpu, operator: Exists}]
""")


@pytest.fixture(scope="session")
def presets() -> dict[tuple[str, str], dict]:
    objs = load_profile("rhoai-3.0").objects()
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o
            for o in objs if o["kind"] == "LLMInferenceServiceConfig"}


@pytest.fixture
def find_config(presets):
    extra: dict[tuple[str, str], dict] = {}

    def find(namespace: str, name: str) -> dict | None:
        return extra.get((namespace, name)) or presets.get((namespace, name))

    find.extra = extra  # type: ignore[attr-defined]
    return find


@pytest.fixture
def step08() -> dict:
    return copy.deepcopy(STEP_08)


@pytest.fixture
def pd() -> dict:
    return copy.deepcopy(PD)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
