"""The workshop's seed LLMInferenceServices, one copy for every test that applies them.

A module of its own, not conftest.py, so the controller's unit tests and the end-to-end tests can import
it by a name no other file shares. Each is a plain manifest as a user applies it (no ``uid``: the API
server assigns one); callers deep-copy before changing anything.
"""

from __future__ import annotations

import yaml

# Guide step 08: the distributed Mistral on two L4 nodes, labelled for Kueue.
STEP_08 = yaml.safe_load("""
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata:
  name: mistral-3-distributed
  namespace: private-ai
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
