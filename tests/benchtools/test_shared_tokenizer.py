"""The lab's shared tokenizer: Hugging Face loads it offline and counts exactly as the simulated vLLM does."""

from __future__ import annotations

import json
import random

import pytest

from llmd_lab.sim.vllm.engine import _WORDS
from llmd_lab.sim.vllm.tokenizer import SPECIAL_TOKENS, Tokenizer
from llmd_lab.tokenizer import TOKENIZER_DIR
from llmd_lab.traffic.workloads import words

transformers = pytest.importorskip("transformers", reason="the bench extra (GuideLLM) brings transformers")

TEXTS = [
    "Hello, world!  It's 2026: snake_case + numbers 1234567.\n\nBye",
    "Ünïcödé — “quotes”, emoji 🚀 and 中文 text\ttabs   spaces ",
    "<|im_start|>user\nWhat is llm-d?<|im_end|>\n<|im_start|>assistant\n",
]


@pytest.fixture(scope="module")
def hf():
    """Loaded from the directory alone: a local path never reaches the Hub."""
    return transformers.AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))


@pytest.mark.parametrize("text", TEXTS)
def test_hf_autotokenizer_gives_the_simulated_vllms_ids_and_decodes_losslessly(hf, text: str) -> None:
    ids = Tokenizer().encode(text)
    assert hf.encode(text, add_special_tokens=False) == ids
    assert hf.decode(ids) == text == Tokenizer().decode(ids)


def test_chat_template_in_tokenizer_config_renders_like_the_server(hf) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        Tokenizer().apply_chat_template(messages)
    )
    config = json.loads((TOKENIZER_DIR / "tokenizer_config.json").read_text())
    assert config["eos_token"] == "<|im_end|>" and hf.eos_token_id == SPECIAL_TOKENS["<|im_end|>"]


def test_split_is_prefix_stable_and_workload_words_are_one_token_each() -> None:
    tok = Tokenizer()
    system, question = words(random.Random(1), 300), words(random.Random(2), 40)
    assert len(tok.encode(system)) == 300  # the workloads' "n words ≈ n tokens" holds exactly
    whole = tok.encode(f"{system}\n{question}")
    assert whole[: len(tok.encode(system))] == tok.encode(system)
    for word in _WORDS:  # the engine samples whole tokens
        assert tok.token_id(" " + word) == tok.encode(" " + word)[0]
    with pytest.raises(ValueError, match="not one"):
        tok.token_id(" antidisestablishmentarianism")


def test_english_prose_stays_near_a_bpe_tokenizers_count() -> None:
    prose = (TOKENIZER_DIR.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    ratio = len(Tokenizer().encode(prose)) / len(prose.split())
    assert 1.0 < ratio < 2.0, ratio
