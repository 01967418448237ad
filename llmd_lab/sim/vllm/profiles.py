"""GPU and model profiles: the published numbers the simulated vLLM's physics and memory plan use.

The numbers live in ``llmd_lab/facts/gpus.yaml`` and ``models.yaml``, shared with the library (each with its source), so that learners can
read and change them; this module only loads and resolves them. Quantised variants name a ``base`` model
and inherit its architecture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from llmd_lab import facts

_ARCH_FIELDS = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "tie_word_embeddings",
    "num_parameters",
    "torch_dtype",
)
WEIGHT_FORMATS = ("bf16", "fp8", "w4a16")


class UnknownProfileError(LookupError):
    """A model or GPU name that the profiles do not know; the message lists the known ones."""


@dataclass(frozen=True)
class GPUProfile:
    """One GPU as its datasheet describes it (dense tensor FLOPs, memory as the driver reports it)."""

    name: str
    product: str
    memory_mib: int
    hbm_bandwidth_gbps: float
    bf16_tflops: float
    fp8_tflops: float | None
    interconnect_gbps: float
    interconnect_latency_s: float
    aliases: tuple[str, ...] = ()

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * 1024 * 1024


@dataclass(frozen=True)
class ModelProfile:
    """A model's architecture (from its config.json) and how its weights are stored."""

    name: str
    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    num_parameters: int
    torch_dtype: str = "bfloat16"
    weight_format: str = "bf16"
    group_size: int = 128
    aliases: tuple[str, ...] = ()

    dtype_bytes: int = 2  # activations and KV cache stay BF16 for every format here (kv_cache_dtype=auto)

    @property
    def embedding_parameters(self) -> int:
        """Parameters in the embedding table and (if untied) the LM head: kept in BF16 by quantisers."""
        tables = 1 if self.tie_word_embeddings else 2
        return tables * self.vocab_size * self.hidden_size

    @property
    def linear_parameters(self) -> int:
        """Parameters in the transformer layers' matmuls (the ones quantisation shrinks)."""
        return self.num_parameters - self.embedding_parameters

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights on the GPU(s) in total (divide by TP for one rank); the library sizes models with the
        same function (llmd_lab.facts.weight_bytes)."""
        return facts.weight_bytes(self.num_parameters, self.embedding_parameters, self.weight_format, self.group_size)

    def kv_bytes_per_token(self, tensor_parallel_size: int = 1) -> int:
        """KV-cache bytes one token needs on one rank: layers × kv heads × head dim × 2 (K and V) × dtype.

        KV heads are split across TP ranks; when TP exceeds the KV heads vLLM replicates them, so a rank
        never holds fewer than one.
        """
        kv_heads = max(1, self.num_key_value_heads // tensor_parallel_size)
        return self.num_hidden_layers * kv_heads * self.head_dim * 2 * self.dtype_bytes


@cache
def gpus() -> dict[str, GPUProfile]:
    """All GPU profiles by name (L4, A10G, A100-80GB, H100-80GB)."""
    return {
        name: GPUProfile(name=name, **{**spec, "aliases": tuple(spec.get("aliases", ()))})
        for name, spec in facts.gpus().items()
    }


@cache
def models() -> dict[str, ModelProfile]:
    """All model profiles by Hugging Face id; quantised variants inherit their ``base`` architecture."""
    raw = facts.models()  # one source with the library
    out: dict[str, ModelProfile] = {}
    for name, spec in raw.items():
        base = raw[spec["base"]] if "base" in spec else spec
        fields = {k: base[k] for k in _ARCH_FIELDS}
        fmt = spec.get("weight_format", "bf16")
        if fmt not in WEIGHT_FORMATS:
            raise ValueError(f"models.yaml: {name}: weight_format {fmt!r} is not one of {WEIGHT_FORMATS}")
        out[name] = ModelProfile(
            name=name,
            weight_format=fmt,
            group_size=spec.get("group_size", 128),
            aliases=tuple(spec.get("aliases", ())),
            **fields,
        )
    return out


def _norm(text: str) -> str:
    return text.strip().lower()


def resolve_gpu(name: str) -> GPUProfile:
    """Find a GPU by profile name, node product label (``NVIDIA-L4``) or alias, case-insensitively."""
    wanted = _norm(name)
    for gpu in gpus().values():
        if wanted in {_norm(gpu.name), _norm(gpu.product), *(_norm(a) for a in gpu.aliases)}:
            return gpu
    known = ", ".join(f"{g.name} ({g.product})" for g in gpus().values())
    raise UnknownProfileError(f"unknown GPU {name!r}; known GPUs: {known}")


_SCHEME = re.compile(r"^(hf|oci|pvc|s3|gs|https?)://")


def _candidates(name_or_uri: str) -> list[str]:
    """Forms to try for a model reference: as given, without the URI scheme, and its tail."""
    text = _norm(name_or_uri)
    bare = _SCHEME.sub("", text).rstrip("/")
    forms = [text, bare]
    if "/" in bare:
        forms.append(bare.rsplit("/", 1)[-1])  # registry/org/modelcar-foo:tag -> modelcar-foo:tag
    forms += [f.split(":", 1)[0] for f in forms if ":" in f]  # an OCI tag
    forms += [f.removeprefix("modelcar-") for f in forms if f.startswith("modelcar-")]
    return forms


def resolve_model(name_or_uri: str, *, served_model_names: tuple[str, ...] | list[str] = ()) -> ModelProfile:
    """Find the model a ``vllm serve`` argument refers to.

    Accepts a Hugging Face id (``Qwen/Qwen3-0.6B``), ``hf://org/name``, an OCI modelcar reference the seeds
    deploy, or an alias. ``/mnt/models`` (KServe's mount point) carries no name, so the served model names
    are tried instead. Raises :class:`UnknownProfileError` listing the known models.
    """
    refs = [name_or_uri, *served_model_names]
    by_form: dict[str, ModelProfile] = {}
    for model in models().values():
        for key in (model.name, model.name.rsplit("/", 1)[-1], *model.aliases):
            by_form.setdefault(_norm(key), model)
    for ref in refs:
        for form in _candidates(ref):
            if form in by_form:
                return by_form[form]
    known = ", ".join(models())
    tried = ", ".join(repr(r) for r in refs)
    raise UnknownProfileError(
        f"no model profile matches {tried}; the simulated vLLM knows: {known} "
        "(add one to llmd_lab/facts/models.yaml, or serve one of these names)"
    )
