"""The precise prefix scorer's tokenizer is loaded by the request's model name as a Hugging Face id.

Upstream: llm-d/llm-d-kv-cache-manager@v0.3.1 pkg/tokenization/tokenizer.go (``CachedHFTokenizer.Encode`` →
daulet/tokenizers v1.22.1 ``FromPretrained``: downloads ``<hub>/<model>/resolve/main/tokenizer.json``),
pkg/tokenization/pool.go (``processTask`` logs "failed to encode tokens" and re-queues; ``Tokenize`` never
returns), llm-d/llm-d-inference-scheduler@v0.3.1 pkg/plugins/scorer/precise_prefix_cache.go (HF_TOKEN from env).
"""

from __future__ import annotations

import logging

import pytest
from epp_helpers import ep

from llmd_lab.sim.epp.config import load_config
from llmd_lab.sim.epp.configs import HEAD
from llmd_lab.sim.epp.director import Director, EppError
from llmd_lab.sim.epp.plugins import PluginHandle
from llmd_lab.sim.epp.tokenizers import HFTokenizers, TokenizerLoadError

PRECISE = HEAD + """\
plugins:
- type: precise-prefix-cache-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: precise-prefix-cache-scorer
  - pluginRef: max-score-picker
"""


def _log() -> tuple[logging.Logger, list[str]]:
    lines: list[str] = []
    logger = logging.getLogger("test.precise.tokenizer")
    logger.handlers.clear()
    logger.propagate = False

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger.addHandler(Keep())
    return logger, lines


def test_a_served_name_that_is_not_a_hf_id_fails_with_upstreams_error_every_time() -> None:
    logger, lines = _log()
    tokenizers = HFTokenizers({}, logger)
    assert tokenizers.tokenizer_for("Qwen/Qwen3-0.6B").encode("hello world")
    for _ in range(2):  # not cached: every request tries again and logs again
        with pytest.raises(TokenizerLoadError) as err:
            tokenizers.tokenizer_for("qwen")
    assert str(err.value) == (
        'failed to get tokenizer for model "qwen": failed to download mandatory file tokenizer.json: failed to '
        "download from https://huggingface.co/qwen/resolve/main/tokenizer.json: status code 401")
    assert len(lines) == 2 and all("failed to encode tokens" in line and "qwen" in line for line in lines)


def test_a_gated_model_needs_hf_token_in_the_epps_env() -> None:
    logger, _ = _log()
    with pytest.raises(TokenizerLoadError):
        HFTokenizers({}, logger).tokenizer_for("meta-llama/Llama-3.1-8B-Instruct")
    assert HFTokenizers({"HF_TOKEN": "hf_x"}, logger).tokenizer_for("meta-llama/Llama-3.1-8B-Instruct")


def test_the_request_is_not_scheduled_when_the_tokenizer_cannot_load() -> None:
    logger, lines = _log()
    tokenizers = HFTokenizers({}, logger)
    config = load_config(PRECISE, PluginHandle(tokenizer_for=tokenizers.tokenizer_for))
    director = Director(config, lambda: [ep("p0"), ep("p1")], target_port=lambda: 8000)
    ok = director.handle_request({}, {"model": "Qwen/Qwen3-0.6B", "prompt": "hello " * 40})
    assert ok.endpoint.name in {"p0", "p1"}
    with pytest.raises(EppError) as err:
        director.handle_request({}, {"model": "qwen", "prompt": "hello " * 40})
    assert err.value.status == 503 and "https://huggingface.co/qwen/resolve/main/tokenizer.json" in err.value.message
    assert "spec.model.name" in err.value.message
    assert any("failed to encode tokens" in line for line in lines)
