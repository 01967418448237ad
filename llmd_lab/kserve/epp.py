"""The endpoint-picker (EPP) facts KServe injects into the router-scheduler Deployment.

``scheduler_config_text`` is pkg/controller/llmisvc/scheduler.go ``schedulerConfigText`` at rhoai-3.0: the
text KServe appends as ``--config-text`` to the ``main`` container when the service sets neither
``--config-text`` nor ``--config-file`` (P/D config when ``spec.prefill`` is set). The simulated EPP loads
the same text, so the lab's default routing is KServe's.

``EPP_SERVICE_PORT_NAMES``: expectedSchedulerService exposes only the scheduler containers' ports with these
names — no KV-event (ZMQ) port, whatever the precise-prefix sample points vLLM at.
"""

from __future__ import annotations

EPP_CONFIG_API_VERSION = "inference.networking.x-k8s.io/v1alpha1"
EPP_CONFIG_KIND = "EndpointPickerConfig"
CONFIG_ARGS = ("--config-text", "-config-text", "--config-file", "-config-file")
EPP_SERVICE_PORT_NAMES = ("grpc", "grpc-health", "metrics")

DEFAULT_CONFIG_TEXT = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: single-profile-handler
- type: prefix-cache-scorer
- type: load-aware-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
    weight: 2.0
  - pluginRef: load-aware-scorer
    weight: 1.0
  - pluginRef: max-score-picker
"""

# "Always do P/D by default (threshold 0)"
PD_CONFIG_TEXT = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
  - type: prefill-header-handler
  - type: prefill-filter
  - type: decode-filter
  - type: max-score-picker
  - type: prefix-cache-scorer
  - type: queue-scorer
  - type: pd-profile-handler
    parameters:
      threshold: 0
schedulingProfiles:
  - name: prefill
    plugins:
      - pluginRef: prefill-filter
      - pluginRef: queue-scorer
        weight: 1.0
      - pluginRef: max-score-picker
  - name: decode
    plugins:
      - pluginRef: decode-filter
      - pluginRef: queue-scorer
        weight: 1.0
      - pluginRef: max-score-picker
"""


def scheduler_config_text(prefill: bool) -> str:
    """The config KServe injects: P/D when the service has a ``prefill`` section, else the default."""
    return PD_CONFIG_TEXT if prefill else DEFAULT_CONFIG_TEXT


def has_config_arg(args: list[str]) -> bool:
    """True when the EPP's args already carry a config, so KServe injects none."""
    return any(a in CONFIG_ARGS for a in args)
