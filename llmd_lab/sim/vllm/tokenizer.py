"""A deterministic, offline tokenizer and a ChatML chat template.

No real tokenizer file ships in a PyPI package we may use without a download, so this is a documented
approximation in the style of llm-d-inference-sim's regex tokenizer: text is split GPT-2-style into words
(with their leading space), numbers (up to 3 digits), punctuation runs and whitespace; each piece's id is a
stable hash of its bytes (xxhash64), so the same text always gives the same ids in every process. What matters
for the lab holds exactly: the split is prefix-stable at piece boundaries, so a shared system prompt or an
earlier turn of a conversation encodes to a real token prefix of the next request, and the chat template's
special tokens are single ids. Token counts are close to a BPE tokenizer's for English (≈1.3 tokens/word).

``decode`` inverts ``encode`` for every piece this process has seen (encoded or generated); ids it never saw
decode to "".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import xxhash

# Qwen2/Qwen3 special-token ids, so that the chat markers look like the real ones in /tokenize output.
SPECIAL_TOKENS: dict[str, int] = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
}
EOS_TOKEN = "<|im_end|>"
_FIRST_PIECE_ID = 1 << 20  # ordinary pieces live above every special id
_PIECE_ID_SPACE = (1 << 31) - _FIRST_PIECE_ID  # ids fit a u32 (KV events carry token ids as u32)

_SPECIAL = re.compile(
    r"(<\|[a-z_]+\|>)"
)  # special tokens are cut out first so punctuation can't swallow them
_PIECES = re.compile(
    r" ?[^\W\d_]+"  # a word with its leading space
    r"| ?\d{1,3}"  # numbers in chunks of up to 3 digits, like Qwen/Llama
    r"| ?(?:[^\s\w]|_)+"  # punctuation run (underscore included) with its leading space
    r"|\s+(?!\S)|\s+"  # whitespace (trailing run kept separate from the next word's space)
)


class Tokenizer:
    """Stable-id regex tokenizer with a ChatML (Qwen-style) chat template."""

    def __init__(self, special_tokens: Mapping[str, int] | None = None) -> None:
        self.special_tokens = dict(special_tokens or SPECIAL_TOKENS)
        self._id_to_piece: dict[int, str] = {i: t for t, i in self.special_tokens.items()}
        self._piece_to_id: dict[str, int] = dict(self.special_tokens)
        self.eos_token_id = self.special_tokens[EOS_TOKEN]

    def token_id(self, piece: str) -> int:
        """The id of one piece (special tokens keep their fixed ids)."""
        found = self._piece_to_id.get(piece)
        if found is None:
            found = _FIRST_PIECE_ID + xxhash.xxh64_intdigest(piece.encode()) % _PIECE_ID_SPACE
            self._piece_to_id[piece] = found
            self._id_to_piece[found] = piece
        return found

    def split(self, text: str) -> list[str]:
        """The pieces of ``text``; joining them gives ``text`` back."""
        pieces: list[str] = []
        for i, segment in enumerate(_SPECIAL.split(text)):
            if i % 2:
                pieces.append(segment)
            elif segment:
                pieces.extend(_PIECES.findall(segment))
        return pieces

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS is added, as for Qwen)."""
        return [self.token_id(p) for p in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; ids never produced by this process decode to ""."""
        return "".join(self._id_to_piece.get(i, "") for i in ids)

    def apply_chat_template(
        self, messages: list[Mapping[str, object]], *, add_generation_prompt: bool = True
    ) -> str:
        """ChatML as Qwen's template renders it: ``<|im_start|>role\\ncontent<|im_end|>\\n`` per message.

        Content may be a string or a list of OpenAI content parts (the text parts are joined).
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
