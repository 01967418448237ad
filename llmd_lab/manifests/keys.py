"""The strings a manifest is keyed by, and why each workaround is there: one place that the builder, the
YAML renderer and ``doctor`` read, so a comment in the YAML can never drift from the key it explains."""

from __future__ import annotations

from llmd_lab.kserve import names

API_VERSION = names.API_VERSION
KIND = names.KIND
ENABLE_AUTH_ANNOTATION = "security.opendatahub.io/enable-auth"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KV_METRIC_FLAG = "--kv-cache-usage-percentage-metric"
KV_METRIC_NAME = "vllm:kv_cache_usage_perc"
GPU_RESOURCE = "nvidia.com/gpu"
#: The Go template KServe fills with the service's namespace after merging its presets.
NAMESPACE_TEMPLATE = "{{ .ObjectMeta.Namespace }}"

WHY = {
    ENABLE_AUTH_ANNOTATION: "RHOAI 3.0 workaround: auth via Connectivity Link is broken (RHOAIENG-39326)",
    KV_METRIC_FLAG: "RHOAI 3.0 workaround: EPP default vllm:gpu_cache_usage_perc is hidden by vLLM (RHOAIENG-41868)",
    KUEUE_QUEUE_LABEL: "Kueue admits the workload through this LocalQueue",
}


class ManifestError(ValueError):
    """A manifest that would be rejected or could never run; ``problems`` lists each fix to make."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("LLMInferenceService is not valid:\n" + "\n".join(f"  - {p}" for p in problems))
