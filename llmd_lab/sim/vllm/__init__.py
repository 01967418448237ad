"""A simulated vLLM replica: what learners measure emerges from vLLM's own mechanisms, on a simulated GPU.

Layers, bottom up (each module names the vLLM file it follows):

* ``profiles`` + ``data/*.yaml`` — GPUs and models with their published numbers; ``resolve_model``/``resolve_gpu``.
* ``tokenizer`` — deterministic offline tokenizer and ChatML template (shared prompts are real token prefixes).
* ``kv_cache_utils``, ``block_pool``, ``kv_cache_manager`` — paged KV cache with automatic prefix caching.
* ``request``, ``scheduler`` — continuous batching, chunked prefill, preemption by recompute.
* ``physics`` — step time (roofline), API-server delay, memory plan, load time; the planner imports it. Its free
  parameters live in ``data/physics.yaml``, fitted and checked against ``data/measurements.yaml`` (published
  ``vllm bench serve`` results) by ``llmd-lab bench fidelity``.
* ``engine`` — ``LLMEngine.step(now)``: pure and deterministic, no clock, no I/O.
* ``async_engine`` — ``AsyncLLM`` on an asyncio loop with a scaled real-time ``Clock``.
* ``args``, ``server``, ``metrics``, ``kv_events`` — ``vllm serve``: OpenAI API, ``/metrics``, ZMQ KV events.
"""
