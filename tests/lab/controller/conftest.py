"""Fixtures: the rhoai-3.0 KServe presets and the seed LLMInferenceServices."""

from __future__ import annotations

import copy

import pytest
import yaml

from llmd_lab.lab.profiles import load_profile

STEP_08 = yaml.safe_load("""
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata:
  name: mistral-3-distributed
  namespace: private-ai
  uid: 0b7e3c2a-1111-2222-3333-444455556666
  labels: {kueue.x-k8s.io/queue-name: llmd}
  annotations: {security.opendatahub.io/enable-auth: "false"}
spec:
  model:
    name: mistral-3-distributed
    uri: oci://registry.redhat.io/rhelai1/modelcar-mistral-small-24b-instruct-2501-quantized-w4a16:1.5
  parallelism: {tensor: 1}
  replicas: 2
  template:
    nodeSelector: {node.kubernetes.io/instance-type: g6.4xlarge}
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    containers:
      - name: main
        resources:
          limits: {cpu: "16", memory: 60Gi, nvidia.com/gpu: "1"}
          requests: {cpu: "8", memory: 32Gi, nvidia.com/gpu: "1"}
  router:
    route: {}
    scheduler: {}
""")

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
