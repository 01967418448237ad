"""The simulated vLLM's tokenizer: the lab's shared Hugging Face tokenizer, plus Qwen's ChatML chat template.

A real vLLM counts tokens with the model's tokenizer, and so do the benchmark tools a learner points at it
(GuideLLM, inference-perf). The lab ships one offline tokenizer directory (:mod:`llmd_lab.tokenizer`: a
byte-level BPE over the lab's piece split, built by ``llmd_lab/tokenizer/build.py``) and the simulated vLLM
loads exactly that file, so ``prompt_tokens`` agree between the tools, the kit's runner and the pods' metrics.
What the lab relies on holds exactly: encoding is prefix-stable at piece boundaries (a shared system prompt or
an earlier turn is a real token prefix of the next request), ChatML's special tokens are single ids at Qwen's
ids, and ``decode`` is lossless for any text (GuideLLM builds prompts by encode, truncate, decode).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from tokenizers import Tokenizer as HFTokenizer

from llmd_lab.tokenizer import TOKENIZER_DIR

# Qwen2/Qwen3 special-token ids, so that the chat markers look like the real ones in /tokenize output.
SPECIAL_TOKENS: dict[str, int] = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
}
EOS_TOKEN = "<|im_end|>"


@functools.cache
def _load() -> HFTokenizer:
    """The shipped tokenizer.json, loaded once per process (it is immutable once loaded)."""
    tok = HFTokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json"))
    for text, token_id in SPECIAL_TOKENS.items():
        if tok.token_to_id(text) != token_id:
            raise RuntimeError(f"{TOKENIZER_DIR}/tokenizer.json: {text} is not id {token_id}; rebuild it")
    return tok


class Tokenizer:
    """The shared tokenizer with a ChatML (Qwen-style) chat template."""

    def __init__(self) -> None:
        self._tok = _load()
        self.special_tokens = dict(SPECIAL_TOKENS)
        self.eos_token_id = self.special_tokens[EOS_TOKEN]

    def token_id(self, piece: str) -> int:
        """The id of ``piece``, which must be exactly one token (the engine samples whole tokens)."""
        ids = self._tok.encode(piece, add_special_tokens=False).ids
        if len(ids) != 1:
            raise ValueError(f"{piece!r} is {len(ids)} tokens, not one")
        return ids[0]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS is added, as for Qwen)."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` (special tokens included, as vLLM's detokenizer shows them in /detokenize)."""
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def apply_chat_template(
        self, messages: list[Mapping[str, object]], *, add_generation_prompt: bool = True
    ) -> str:
        """ChatML as Qwen's template renders it: ``<|im_start|>role\\ncontent<|im_end|>\\n`` per message.

        Content may be a string or a list of OpenAI content parts (the text parts are joined). The shipped
        tokenizer_config.json carries the same template for the tools that render it themselves.
        """
        out: list[str] = []
        for message in messages:
            role = message.get("role")
            if not isinstance(role, str):
                raise ValueError("every message needs a string 'role'")
            out.append(f"<|im_start|>{role}\n{_content_text(message.get('content'))}<|im_end|>\n")
        if add_generation_prompt:
            out.append("<|im_start|>assistant\n")
        return "".join(out)


def _content_text(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    raise ValueError("message 'content' must be a string or a list of content parts")
