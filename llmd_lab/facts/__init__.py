"""GPU and model facts as data, one source for the library and the simulators.

``gpus.yaml`` (datasheet numbers, memory as the driver reports it) and ``models.yaml`` (architecture and
parameter counts from each model's config.json / safetensors index, keyed by Hugging Face id), every number
with its source. ``llmd_lab.manifests`` sizes models and GPUs from them (does it fit?); the simulated vLLM
(``llmd_lab.sim.vllm.profiles``) plans memory and step time from the same entries. A public package: the
library may read it, and it imports nothing from the lab or the simulators (import-linter contract).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

#: Bytes per parameter of each weight format, for a whole-model estimate: bf16 2, fp8 ~1 (linear layers),
#: w4a16 ~0.55 (4-bit linear layers plus a bf16 scale per group; embeddings stay bf16).
BYTES_PER_PARAM: dict[str, float] = {"bf16": 2.0, "fp8": 1.0, "w4a16": 0.55}


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load(resources.files(__package__).joinpath(name).read_text())


@cache
def gpus() -> dict[str, dict[str, Any]]:
    """``gpus.yaml``: GPU name → its facts (``product`` is the node label ``nvidia.com/gpu.product``)."""
    return _load("gpus.yaml")


@cache
def models() -> dict[str, dict[str, Any]]:
    """``models.yaml``: Hugging Face id → its facts (quantised variants name a ``base``)."""
    return _load("models.yaml")


def gpu_by_product(product: str) -> tuple[str, dict[str, Any]]:
    """The GPU whose node label is ``product`` (``NVIDIA-L4``): its name and facts."""
    for name, facts in gpus().items():
        if facts["product"] == product:
            return name, facts
    raise KeyError(f"no GPU with product label {product!r} in llmd_lab/facts/gpus.yaml")


def num_parameters(model_id: str) -> int:
    """The model's parameter count (a quantised variant has its base's)."""
    facts = models()[model_id]
    return int(models()[facts["base"]]["num_parameters"] if "base" in facts else facts["num_parameters"])


def weight_bytes(num_parameters: int, embedding_parameters: int, weight_format: str, group_size: int = 128) -> int:
    """Bytes of weights on the GPU(s) in total: bf16 2 bytes/param; fp8 and w4a16 shrink the layers' matmuls
    and keep the embedding table (and untied LM head) in BF16; fp8 1 byte/param (per-channel scales
    negligible), w4a16 half a byte per weight plus one BF16 scale per group."""
    if weight_format == "bf16":
        return num_parameters * 2
    emb = embedding_parameters * 2
    linear = num_parameters - embedding_parameters
    if weight_format == "fp8":
        return emb + linear
    if weight_format == "w4a16":
        return emb + int(linear * (0.5 + 2 / group_size))
    raise ValueError(f"unknown weight_format {weight_format!r}: one of {', '.join(BYTES_PER_PARAM)}")


def model_weight_bytes(model_id: str) -> int:
    """:func:`weight_bytes` of a model in ``models.yaml`` (a quantised variant takes its base's architecture)."""
    entry = models()[model_id]
    arch = models()[entry["base"]] if "base" in entry else entry
    tables = 1 if arch["tie_word_embeddings"] else 2
    return weight_bytes(int(arch["num_parameters"]), tables * arch["vocab_size"] * arch["hidden_size"],
                        entry.get("weight_format", "bf16"), entry.get("group_size", 128))
