"""The precise prefix scorer's tokenizers, loaded by Hugging Face model id as upstream loads them.

llm-d-kv-cache-manager v0.3.1 (the version llm-d-inference-scheduler v0.3.1 pins) tokenizes each prompt with
``tokenizers.FromPretrained(<request's target model>)`` (pkg/tokenization/tokenizer.go, daulet/tokenizers
v1.22.1): it downloads ``https://huggingface.co/<model>/resolve/main/tokenizer.json``, with ``HF_TOKEN`` from the
EPP's environment as the bearer token (pkg/plugins/scorer/precise_prefix_cache.go). So the *served model name*
must be a Hugging Face id: ``qwen`` is not a repository, and the Hub answers 401. The lab's "Hub" is offline:
the model ids in ``llmd_lab/facts/models.yaml`` have a tokenizer (the simulator's one); a gated id needs a token.
Failures are not cached (upstream caches only loaded tokenizers), so every request tries again and logs again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from llmd_lab.kserve import hf
from llmd_lab.sim.vllm.profiles import models
from llmd_lab.sim.vllm.tokenizer import Tokenizer

HUB = "https://huggingface.co"


class TokenizerLoadError(RuntimeError):
    """``CachedHFTokenizer.Encode``'s error when ``FromPretrained`` cannot download the tokenizer."""


def load_error(model: str) -> str:
    """The error chain upstream logs: tokenizer.go Encode → FromPretrained → downloadFile (status code 401, what
    the Hub answers an unauthenticated request for a missing or gated repository)."""
    url = f"{HUB}/{model}/resolve/main/tokenizer.json"
    return (f'failed to get tokenizer for model "{model}": failed to download mandatory file tokenizer.json: '
            f"failed to download from {url}: status code 401")


class HFTokenizers:
    """``tokenizer_for(model)`` for the EPP: the model's tokenizer, or :class:`TokenizerLoadError` (logged)."""

    def __init__(self, env: Mapping[str, str], log: logging.Logger) -> None:
        self.token = env.get("HF_TOKEN", "")
        self.log = log
        self._loaded: dict[str, Tokenizer] = {}

    def _on_hub(self, model: str) -> bool:
        """Whether ``model`` names a repository the lab's offline Hub serves to this EPP (ids match exactly, as
        the Hub's ``resolve`` URLs do for downloads without redirects)."""
        return model in models() and (self.token != "" or not hf.is_gated(model))

    def tokenizer_for(self, model: str) -> Tokenizer:
        tokenizer = self._loaded.get(model)
        if tokenizer is not None:
            return tokenizer
        if not self._on_hub(model):
            err = load_error(model)
            # pool.go processTask: klog.Error(err, "failed to encode tokens", "prompt", …, "modelName", …)
            self.log.error("%sfailed to encode tokensmodelName%s", err, model)
            raise TokenizerLoadError(err)
        self._loaded[model] = tokenizer = Tokenizer()
        return tokenizer
