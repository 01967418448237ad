"""Named ``EndpointPickerConfig`` texts that the simulators, testbeds and benchmarks share.

One place for each configuration, so the gateway testbed, the EPP server's default and the routing
benchmark all run the very same text. KServe's own defaults (what an LLMInferenceService gets when it
sets no config) stay next to the loader in :mod:`llmd_lab.sim.epp.config`.
"""

from __future__ import annotations

from llmd_lab.sim.epp.config import API_VERSION, KIND

HEAD = f"apiVersion: {API_VERSION}\nkind: {KIND}\n"

# GIE v1.0.0's built-in default (helm chart epp-config): queue, kv-cache and prefix scorers, weight 1 each.
GIE_DEFAULT_CONFIG = HEAD + """\
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
  - pluginRef: prefix-cache-scorer
"""

# Load only: queue depth and KV-cache utilization, weight 1 each (no cache affinity).
LOAD_AWARE_CONFIG = HEAD + """\
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
"""

# The workshop's configuration: queue 2, kv-cache 2, approximate prefix 3.
COURSE_CONFIG = HEAD + """\
plugins:
- type: single-profile-handler
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
"""


def precise_prefix_config(hash_seed: str) -> str:
    """The course weights with the precise (KV-event driven) prefix scorer instead of the approximate one.

    ``hash_seed`` must equal the engines' ``PYTHONHASHSEED``, or the scorer's block hashes never match
    the ones the engines publish — the same pairing llm-d deploys.
    """
    return HEAD + f"""\
plugins:
- type: single-profile-handler
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: precise-prefix-cache-scorer
  parameters:
    indexerConfig:
      tokenProcessorConfig: {{blockSize: 16, hashSeed: "{hash_seed}"}}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: precise-prefix-cache-scorer
    weight: 3
"""
