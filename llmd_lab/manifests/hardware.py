"""GPU node types and model weight sizes: what the builder picks nodes by and the fit check weighs.

Both tables come from ``llmd_lab/facts`` (the simulator's numbers), so the library's "does it fit" answer
and the simulated vLLM's memory profile agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmd_lab import facts


@dataclass(frozen=True)
class GpuType:
    """A GPU node type: what ``nodeSelector``/tolerations pick and how much fits on it."""

    instance_type: str
    product: str
    gpus_per_node: int
    memory_gib: float
    hourly_usd: float | None = None
    cpu: int = 16
    memory: str = "60Gi"


def _gpu_gib(product: str) -> float:
    """GPU memory as the driver reports it (what ``--gpu-memory-utilization`` multiplies), from llmd_lab.facts."""
    return round(facts.gpu_by_product(product)[1]["memory_mib"] / 1024, 1)


#: Node types the workshop uses (step-08 prices: g6.4xlarge $0.85/h, g6.12xlarge $3.40/h); GPU memory per
#: GPU from llmd_lab/facts/gpus.yaml (the simulator's numbers).
GPU_TYPES: dict[str, GpuType] = {
    "g6.4xlarge": GpuType("g6.4xlarge", "NVIDIA-L4", 1, _gpu_gib("NVIDIA-L4"), 0.85, cpu=16, memory="60Gi"),
    "g6.12xlarge": GpuType("g6.12xlarge", "NVIDIA-L4", 4, _gpu_gib("NVIDIA-L4"), 3.40, cpu=48, memory="180Gi"),
    "p4d.24xlarge": GpuType("p4d.24xlarge", "NVIDIA-A100-SXM4-40GB", 8, _gpu_gib("NVIDIA-A100-SXM4-40GB"), None,
                            cpu=96, memory="1000Gi"),
    "p5.48xlarge": GpuType("p5.48xlarge", "NVIDIA-H100-80GB-HBM3", 8, _gpu_gib("NVIDIA-H100-80GB-HBM3"), None,
                           cpu=192, memory="2000Gi"),
}


@dataclass(frozen=True)
class ModelSize:
    """Rough weight footprint of a model, for the "does it fit" check (our table, not the simulator's)."""

    params_b: float
    bytes_per_param: float = 2.0  # bf16
    weight_bytes: int | None = None  # exact, for models in llmd_lab/facts/models.yaml (the simulator's figure)

    @property
    def weights_gib(self) -> float:
        if self.weight_bytes is not None:
            return self.weight_bytes / 2**30
        return self.params_b * 1e9 * self.bytes_per_param / 2**30


def _sizes() -> dict[str, ModelSize]:
    """Every model of llmd_lab/facts/models.yaml, by Hugging Face id and by its aliases (the simulator's table)."""
    out: dict[str, ModelSize] = {}
    for model_id, entry in facts.models().items():
        size = ModelSize(facts.num_parameters(model_id) / 1e9,
                         facts.BYTES_PER_PARAM[entry.get("weight_format", "bf16")], facts.model_weight_bytes(model_id))
        for key in (model_id, *entry.get("aliases", ())):
            out.setdefault(key, size)
    return out


#: Models the workshop and seeds mention, from llmd_lab/facts/models.yaml (add a model there, with its source).
MODEL_SIZES: dict[str, ModelSize] = _sizes()

#: vLLM's default --gpu-memory-utilization, and the share of that we insist stays free for the KV cache.
GPU_MEMORY_UTILIZATION = 0.9
MIN_KV_FRACTION = 0.1


def model_size(model: str) -> ModelSize | None:
    """Look a model up in :data:`MODEL_SIZES` by name, alias or URI tail (an OCI modelcar image names its
    model); None if unknown."""
    key = model.split("://", 1)[-1].lower()
    by_length = sorted(MODEL_SIZES.items(), key=lambda item: -len(item[0]))  # the most specific name wins
    for name, size in by_length:
        if key == name.lower() or key.endswith(name.lower()) or name.lower() in key:
            return size
    return None
