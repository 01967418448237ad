"""How long one engine step takes on a GPU, and how much memory is left for the KV cache.

A roofline model, so that effects learners measure emerge instead of being set by hand:

* **compute**: ``2 × linear parameters × new tokens`` (+ the LM head for each sequence that samples) plus
  causal attention over the context, ``4 × layers × heads × head_dim × new × (context + (new+1)/2)``, at a
  model-FLOPs utilisation (``mfu``) of the dense BF16 (or FP8 for FP8 weights) peak.
* **memory**: weights once per step, plus the KV cache read for every sequence's context and written for its new
  tokens, at a ``bandwidth_efficiency`` of the HBM bandwidth.
* the step takes the larger of the two (prefill is compute-bound, decode memory-bound), plus
  ``step_overhead_s`` (scheduler, kernel launches) and ``per_seq_overhead_s`` per sequence (sampling,
  detokenising, output processing on the CPU side).
* **front end**: a request reaches the scheduler ``frontend_request_s`` after it arrives, plus
  ``frontend_per_running_seq_s`` for every sequence the API server is already streaming (tokenising, IPC,
  detokenising and SSE writes happen in vLLM's API-server process, not on the GPU); see :func:`frontend_delay_s`.
* **tensor parallelism** divides weights, KV heads and FLOPs by ``tp`` and adds two all-reduces per layer of
  ``tokens × hidden × 2`` bytes (ring: ``2(tp−1)/tp`` of it crosses the link, plus a fixed latency per call).

Cached prefix tokens are not in ``num_new_tokens``: they cost only their KV read, which is why a prefix-cache
hit lowers TTFT by about the prefill compute of the cached part.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import yaml

from llmd_lab.sim.vllm.profiles import GPUProfile, ModelProfile

GiB = 1 << 30

# The free parameters (efficiencies, CPU overheads) are named, sourced and fitted in data/physics.yaml
# (``llmd-lab bench fidelity --fit``); the constants below are what every engine uses unless told otherwise.
_PARAMS = yaml.safe_load(resources.files("llmd_lab.sim.vllm").joinpath("data", "physics.yaml").read_text())
DEFAULT_MFU: float = _PARAMS["mfu"]
DEFAULT_BANDWIDTH_EFFICIENCY: float = _PARAMS["bandwidth_efficiency"]
DEFAULT_STEP_OVERHEAD_S: float = _PARAMS["step_overhead_s"]
# CPU work per sequence per step (input prep, sampling, detokenising, output processing) in vLLM's V1 engine:
# tens of microseconds, visible as the ITL growth at batch 64 that a pure roofline would not show.
DEFAULT_PER_SEQ_OVERHEAD_S: float = _PARAMS["per_seq_overhead_s"]
# The API server's share of TTFT (see data/physics.yaml): per request, and per sequence it is already streaming.
DEFAULT_FRONTEND_REQUEST_S: float = _PARAMS["frontend_request_s"]
DEFAULT_FRONTEND_PER_RUNNING_SEQ_S: float = _PARAMS["frontend_per_running_seq_s"]
# Weights stream from local NVMe / a modelcar image at about 2 GB/s; engine init (profiling, CUDA graphs) adds ~15 s.
WEIGHT_LOAD_BYTES_PER_S = 2e9
ENGINE_INIT_S = 15.0
# CUDA context, NCCL buffers and other memory outside PyTorch's allocator, per GPU.
NON_TORCH_BYTES = int(0.4 * GiB)


@dataclass(frozen=True)
class SeqWork:
    """One sequence's share of a step: tokens computed now, and tokens already in its KV cache."""

    num_new_tokens: int
    num_context_tokens: int = 0


@dataclass(frozen=True)
class StepCost:
    """The parts of a step's time, for explanation and tests."""

    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float

    @property
    def total_s(self) -> float:
        return max(self.compute_s, self.memory_s) + self.comm_s + self.overhead_s


def peak_flops(model: ModelProfile, gpu: GPUProfile) -> float:
    """Dense FLOP/s the model's matmuls run at: FP8 tensor cores for FP8 weights where the GPU has them."""
    if model.weight_format == "fp8" and gpu.fp8_tflops:
        return gpu.fp8_tflops * 1e12
    return gpu.bf16_tflops * 1e12


def step_cost(
    model: ModelProfile,
    gpu: GPUProfile,
    tp: int,
    batch: Iterable[SeqWork | tuple[int, int]],
    *,
    mfu: float = DEFAULT_MFU,
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY,
    step_overhead_s: float = DEFAULT_STEP_OVERHEAD_S,
    per_seq_overhead_s: float = DEFAULT_PER_SEQ_OVERHEAD_S,
) -> StepCost:
    """Cost breakdown of one step over ``batch`` (see the module docstring for the model)."""
    if tp < 1:
        raise ValueError(f"tensor parallel size must be >= 1, got {tp}")
    seqs = [b if isinstance(b, SeqWork) else SeqWork(*b) for b in batch]
    if not seqs:
        return StepCost(0.0, 0.0, 0.0, 0.0)
    new_tokens = sum(s.num_new_tokens for s in seqs)
    attn_width = model.num_hidden_layers * model.num_attention_heads * model.head_dim
    flops = 2.0 * model.linear_parameters * new_tokens
    flops += 2.0 * model.vocab_size * model.hidden_size * len(seqs)  # LM head for each sampled position
    for s in seqs:
        flops += 4.0 * attn_width * s.num_new_tokens * (s.num_context_tokens + (s.num_new_tokens + 1) / 2)
    compute_s = flops / (tp * peak_flops(model, gpu) * mfu)

    kv_per_token = model.kv_bytes_per_token(tp)
    kv_bytes = sum((s.num_context_tokens + s.num_new_tokens) * kv_per_token for s in seqs)
    bytes_moved = model.weight_bytes / tp + kv_bytes
    memory_s = bytes_moved / (gpu.hbm_bandwidth_gbps * 1e9 * bandwidth_efficiency)

    comm_s = 0.0
    if tp > 1:
        message = new_tokens * model.hidden_size * model.dtype_bytes
        per_call = gpu.interconnect_latency_s + 2 * (tp - 1) / tp * message / (gpu.interconnect_gbps * 1e9)
        comm_s = 2 * model.num_hidden_layers * per_call
    return StepCost(compute_s, memory_s, comm_s, step_overhead_s + per_seq_overhead_s * len(seqs))


def step_time(
    model: ModelProfile,
    gpu: GPUProfile,
    tp: int,
    batch: Iterable[SeqWork | tuple[int, int]],
    **efficiency: float,
) -> float:
    """Seconds one engine step takes; ``batch`` holds ``SeqWork`` or ``(new_tokens, context_tokens)``."""
    return step_cost(model, gpu, tp, batch, **efficiency).total_s


@dataclass(frozen=True)
class MemoryPlan:
    """What vLLM's memory profiling decides, per GPU (rank)."""

    total_bytes: int
    requested_bytes: int  # total × gpu_memory_utilization
    weight_bytes: int
    activation_bytes: int
    non_torch_bytes: int
    kv_cache_bytes: int
    kv_bytes_per_token: int
    block_size: int
    num_gpu_blocks: int

    @property
    def kv_cache_tokens(self) -> int:
        return self.num_gpu_blocks * self.block_size


def activation_peak_bytes(
    model: ModelProfile, tp: int, max_num_batched_tokens: int, max_num_seqs: int
) -> int:
    """Peak activation memory of vLLM's profiling run: a batch of ``max_num_batched_tokens`` dummy tokens.

    Dominated by the MLP's gate/up output (2 × intermediate / tp per token) and a few hidden-size buffers,
    plus FP32 logits for ``max_num_seqs`` sampled positions.
    """
    per_token = (2 * model.intermediate_size // tp + 6 * model.hidden_size) * model.dtype_bytes
    logits = max_num_seqs * model.vocab_size * 4
    return max_num_batched_tokens * per_token + logits


def plan_memory(
    model: ModelProfile,
    gpu: GPUProfile,
    *,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    block_size: int = 16,
    max_num_batched_tokens: int = 2048,
    max_num_seqs: int = 256,
) -> MemoryPlan:
    """Split one GPU's memory like vLLM: requested share − weights − activations − non-torch = KV cache.

    ``kv_cache_bytes`` (and so ``num_gpu_blocks``) may come out ≤ 0: the caller turns that into vLLM's
    start-up error.
    """
    tp = tensor_parallel_size
    requested = int(gpu.memory_bytes * gpu_memory_utilization)
    weights = model.weight_bytes // tp
    activation = activation_peak_bytes(model, tp, max_num_batched_tokens, max_num_seqs)
    non_torch = NON_TORCH_BYTES + (int(0.25 * GiB) if tp > 1 else 0)
    kv_cache = requested - weights - activation - non_torch
    per_token = model.kv_bytes_per_token(tp)
    blocks = max(0, kv_cache // (per_token * block_size))
    return MemoryPlan(
        total_bytes=gpu.memory_bytes,
        requested_bytes=requested,
        weight_bytes=weights,
        activation_bytes=activation,
        non_torch_bytes=non_torch,
        kv_cache_bytes=kv_cache,
        kv_bytes_per_token=per_token,
        block_size=block_size,
        num_gpu_blocks=blocks,
    )


def frontend_delay_s(
    num_running: int,
    *,
    frontend_request_s: float = DEFAULT_FRONTEND_REQUEST_S,
    frontend_per_running_seq_s: float = DEFAULT_FRONTEND_PER_RUNNING_SEQ_S,
) -> float:
    """Seconds between a request's arrival and its first chance to be scheduled (API-server work)."""
    return frontend_request_s + frontend_per_running_seq_s * num_running


def load_time_s(model: ModelProfile, tensor_parallel_size: int = 1) -> float:
    """Simulated seconds to load weights (each rank loads its shard in parallel) and initialise the engine."""
    return model.weight_bytes / tensor_parallel_size / WEIGHT_LOAD_BYTES_PER_S + ENGINE_INIT_S


def decode_tokens_per_s(
    model: ModelProfile, gpu: GPUProfile, tp: int, batch_size: int, context_tokens: int, **efficiency: float
) -> float:
    """Steady-state output tokens/s of ``batch_size`` sequences decoding at ``context_tokens`` each."""
    seqs: Sequence[SeqWork] = [SeqWork(1, context_tokens)] * batch_size
    return batch_size / step_time(model, gpu, tp, seqs, **efficiency)
