"""The lab's shared tokenizer: one offline, Hugging Face-loadable directory.

The simulated vLLM counts tokens with it, and GuideLLM, inference-perf and the kit's runner load the same
directory (``--tokenizer``/``--processor`` = :data:`TOKENIZER_DIR`), so ``prompt_tokens`` agree everywhere in
the lab. On a cluster the served model's own tokenizer is used instead. ``build.py`` documents how it was made.
"""

from __future__ import annotations

from pathlib import Path

TOKENIZER_DIR: Path = Path(__file__).parent
"""Holds tokenizer.json, tokenizer_config.json (with Qwen's ChatML chat template) and special_tokens_map.json."""

__all__ = ["TOKENIZER_DIR"]
