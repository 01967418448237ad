"""Builds the lab's shared tokenizer directory (run once; its output is shipped): ``python -m llmd_lab.tokenizer.build``.

Why a trained byte-level BPE and not a hash per word: GuideLLM, inference-perf and the kit's runner all count
tokens with a Hugging Face tokenizer, so the simulated vLLM must count with one too, or ``prompt_tokens`` disagree.
The pre-tokenizer is the split the lab always used (words with their leading space, numbers in chunks of up to
3 digits, punctuation runs, whitespace), so encoding stays prefix-stable at piece boundaries: a shared system
prompt or an earlier turn encodes to a real token prefix of the next request, which the prefix cache and the
EPP's precise scorer rely on. Byte-level pieces make ``decode`` lossless for any text. Qwen's ChatML special
tokens keep Qwen's ids. The merges are learned from text this project owns (its docs, course pages and
notebooks), the words the workloads and the engine use, and the English help topics that ship with CPython,
so common English words are one token each.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

# The lab's piece split (see llmd_lab.sim.vllm.tokenizer's history): a word with its leading space, numbers in
# chunks of up to 3 digits (like Qwen/Llama), a punctuation run (underscore included) with its leading space,
# whitespace (a trailing run kept apart from the next word's space).
PIECES = r" ?[^\W\d_]+| ?\d{1,3}| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"
SPECIAL_TOKENS: dict[str, int] = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
VOCAB_SIZE = 32000
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
OUT_DIR = Path(__file__).parent


def corpus(repo: Path) -> Iterator[str]:
    """The training text, in a fixed order: the repository's prose, the lab's word lists, CPython's help topics."""
    patterns = ("README.md", "docs/**/*.md", "antora/**/*.adoc", "notebooks/*.py")
    for pattern in patterns:
        for path in sorted(repo.glob(pattern)):
            if "node_modules" not in path.parts:
                yield path.read_text(encoding="utf-8")
    from llmd_lab.sim.vllm import engine
    from llmd_lab.traffic import workloads

    for word_list in (engine._WORDS, workloads._VOCAB, workloads._CODE_WORDS):
        yield " ".join(list(word_list) * 50)  # " word": inside a text
        yield "\n".join(list(word_list) * 50)  # "word": the first token of a reply
    from pydoc_data import topics

    yield from (topics.topics[key] for key in sorted(topics.topics))


def train(texts: Iterator[str]) -> Tokenizer:
    """A byte-level BPE over the lab's piece split, with the ChatML specials at Qwen's ids."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PIECES), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    spec = json.loads(tok.to_str())
    for text, token_id in SPECIAL_TOKENS.items():
        spec["model"]["vocab"][text] = token_id
    spec["added_tokens"] = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
         "special": True}
        for t, i in SPECIAL_TOKENS.items()
    ]
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def write(tok: Tokenizer, out: Path) -> None:
    """tokenizer.json plus the configs transformers' AutoTokenizer reads (no model config needed)."""
    tok.save(str(out / "tokenizer.json"), pretty=False)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 131072,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "add_bos_token": False,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    special = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    repo = Path(args[0]) if args else OUT_DIR.parents[1]
    write(train(corpus(repo)), OUT_DIR)
    print(f"wrote {OUT_DIR}/tokenizer.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
