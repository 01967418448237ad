"""Build ``LLMInferenceService`` objects as plain dicts, check them, render them to YAML.

Why dicts: the same object goes to ``kubernetes``'s dynamic client, to ``assets/*.yaml`` and to the
notebook's display, and a dict is what the API server returns. One module a job:

* :mod:`~llmd_lab.manifests.builder` — :func:`llm_inference_service`, the RHOAI 3.0 shape (KServe
  ``serving.kserve.io/v1alpha1``);
* :mod:`~llmd_lab.manifests.scheduler` — :func:`scheduler_config`, the endpoint picker's
  ``EndpointPickerConfig`` and container arguments;
* :mod:`~llmd_lab.manifests.hardware` — :data:`GPU_TYPES` and :data:`MODEL_SIZES` (from ``llmd_lab.facts``);
* :mod:`~llmd_lab.manifests.validation` — :func:`validate` checks structure and our own rules (tensor ≤ GPUs
  per node, the model fits in GPU memory) and raises :class:`ManifestError` listing every problem with what
  to change;
* :mod:`~llmd_lab.manifests.render` — :func:`to_yaml` / :func:`from_yaml`;
* :mod:`~llmd_lab.manifests.keys` — the annotation, label and flag names, and why each workaround is there.

Two RHOAI 3.0 known issues are worked around by default (``workarounds=True``) and :func:`to_yaml`
writes a comment beside each saying why:

* ``security.opendatahub.io/enable-auth: "false"`` — auth through Connectivity Link is broken in 3.0
  (RHOAIENG-39326); without the annotation KServe tries to use it and the service never becomes Ready.
* ``--kv-cache-usage-percentage-metric vllm:kv_cache_usage_perc`` on the EPP — its default metric name,
  ``vllm:gpu_cache_usage_perc``, is hidden by newer vLLM, so the kv-cache-utilization-scorer sees 0
  (RHOAIENG-41868).

Notebooks and tests use ``from llmd_lab import manifests; manifests.X``: every public name is re-exported
here. The KServe names and labels live in ``llmd_lab.kserve``.
"""

from __future__ import annotations

from llmd_lab.kserve.epp import EPP_CONFIG_API_VERSION
from llmd_lab.manifests.builder import NIXL_KV_TRANSFER, Prefill, llm_inference_service
from llmd_lab.manifests.hardware import (
    GPU_MEMORY_UTILIZATION,
    GPU_TYPES,
    MIN_KV_FRACTION,
    MODEL_SIZES,
    GpuType,
    ModelSize,
    model_size,
)
from llmd_lab.manifests.keys import (
    API_VERSION,
    ENABLE_AUTH_ANNOTATION,
    GPU_RESOURCE,
    KIND,
    KUEUE_QUEUE_LABEL,
    KV_METRIC_FLAG,
    KV_METRIC_NAME,
    NAMESPACE_TEMPLATE,
    WHY,
    ManifestError,
)
from llmd_lab.manifests.render import from_yaml, to_yaml, with_namespace
from llmd_lab.manifests.scheduler import (
    COURSE_WEIGHTS,
    KNOWN_SCORERS,
    KSERVE_DEFAULT_WEIGHTS,
    scheduler_config,
)
from llmd_lab.manifests.validation import SCHEMA, validate

__all__ = [
    "API_VERSION",
    "COURSE_WEIGHTS",
    "ENABLE_AUTH_ANNOTATION",
    "EPP_CONFIG_API_VERSION",
    "GPU_MEMORY_UTILIZATION",
    "GPU_RESOURCE",
    "GPU_TYPES",
    "KIND",
    "KNOWN_SCORERS",
    "KSERVE_DEFAULT_WEIGHTS",
    "KUEUE_QUEUE_LABEL",
    "KV_METRIC_FLAG",
    "KV_METRIC_NAME",
    "MIN_KV_FRACTION",
    "MODEL_SIZES",
    "NAMESPACE_TEMPLATE",
    "NIXL_KV_TRANSFER",
    "SCHEMA",
    "WHY",
    "GpuType",
    "ManifestError",
    "ModelSize",
    "Prefill",
    "from_yaml",
    "llm_inference_service",
    "model_size",
    "scheduler_config",
    "to_yaml",
    "validate",
    "with_namespace",
]
