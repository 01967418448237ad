"""Workload generators: the request shapes that show (or hide) what KV-cache-aware routing buys.

A :class:`Workload` is a list of :class:`Session` objects. A session is a sequence of user turns sent in
order on one growing conversation (the runner appends each reply before the next turn), so one
shape covers single requests (one turn) and multi-turn chat (step-08: 20 conversations × 6 turns).
Every generator is deterministic under its ``seed``: the same call gives the same prompts, so two
runs (llm-d vs round-robin) see identical traffic.

Text is made of words from a fixed vocabulary; one word is one token for the lab's shared tokenizer and
roughly one for the models the workshop serves, which is all the shapes need (long shared prefixes vs
unique ones).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_VOCAB = (
    "cache block prefix route pod replica token gateway scheduler prompt model serve queue latency "
    "throughput memory tensor decode prefill batch request answer question system policy cluster node "
    "gpu kernel vector index score weight picker filter endpoint metric budget price hour document "
    "section chapter summary review detail example context window session user assistant reason plan "
    "alpha beta gamma delta omega river mountain forest ocean desert valley island harbor bridge tower "
    "garden market library museum theater station airport school office factory kitchen window door"
).split()


def words(rng: random.Random, n: int) -> str:
    """``n`` pseudo-random words (≈ ``n`` tokens)."""
    return " ".join(rng.choice(_VOCAB) for _ in range(n))


@dataclass
class Session:
    """One conversation: optional system prompt, then user turns sent one after another."""

    turns: list[str]
    system: str | None = None
    max_tokens: int = 64
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass
class Workload:
    """A named list of sessions; ``len(workload)`` is the number of requests it sends.

    ``pacing`` says how the source benchmark sent it when that matters (e.g. the reference repository's
    workers and think times); runners that cannot honour it still send the same requests.
    """

    name: str
    sessions: list[Session]
    description: str = ""
    pacing: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(s.turns) for s in self.sessions)

    def __iter__(self) -> Iterator[Session]:
        return iter(self.sessions)

    def __repr__(self) -> str:
        return f"<Workload {self.name}: {len(self.sessions)} sessions, {len(self)} requests>"


def repeated_prompt(
    n: int = 50, *, prompt_tokens: int = 512, max_tokens: int = 32, seed: int = 0
) -> Workload:
    """The same prompt ``n`` times: the best case for a prefix cache (and for cache-aware routing)."""
    prompt = words(random.Random(seed), prompt_tokens)
    sessions = [Session([prompt], max_tokens=max_tokens, tags={"session": i, "turn": 0}) for i in range(n)]
    return Workload("repeated-prompt", sessions, f"one {prompt_tokens}-token prompt sent {n} times")


def shared_system_prompt(
    n: int = 100, *, system_tokens: int = 2000, question_tokens: int = 40, max_tokens: int = 64, seed: int = 0
) -> Workload:
    """A long system prompt shared by every request, followed by a different short question each time."""
    rng = random.Random(seed)
    system = words(rng, system_tokens)
    sessions = [
        Session(
            [words(rng, question_tokens)],
            system=system,
            max_tokens=max_tokens,
            tags={"session": i, "turn": 0},
        )
        for i in range(n)
    ]
    return Workload("shared-system-prompt", sessions, f"{system_tokens}-token system prompt + {n} questions")


def multi_turn(
    conversations: int = 20,
    turns: int = 6,
    *,
    system_tokens: int = 500,
    turn_tokens: int = 120,
    max_tokens: int = 128,
    seed: int = 0,
) -> Workload:
    """Conversations whose every turn resends the whole history (step-08's 20 × 6 benchmark shape).

    Each conversation has its own system prompt, so the cache only helps if a conversation keeps
    landing on the pod that holds its history — which is what prefix-aware routing does.
    """
    rng = random.Random(seed)
    sessions = []
    for c in range(conversations):
        system = f"conversation {c}: " + words(rng, system_tokens)
        sessions.append(
            Session(
                [words(rng, turn_tokens) for _ in range(turns)],
                system=system,
                max_tokens=max_tokens,
                tags={"session": c},
            )
        )
    return Workload("multi-turn", sessions, f"{conversations} conversations × {turns} turns")


def rag(
    n: int = 100,
    *,
    documents: int = 4,
    doc_tokens: int = 1500,
    question_tokens: int = 30,
    max_tokens: int = 64,
    seed: int = 0,
) -> Workload:
    """RAG-style: each request carries one of a few long shared documents plus a fresh question."""
    rng = random.Random(seed)
    docs = [f"document {d}: " + words(rng, doc_tokens) for d in range(documents)]
    sessions = []
    for i in range(n):
        d = rng.randrange(documents)
        prompt = f"Context:\n{docs[d]}\n\nQuestion: {words(rng, question_tokens)}"
        sessions.append(
            Session([prompt], max_tokens=max_tokens, tags={"session": i, "turn": 0, "document": d})
        )
    return Workload(
        "rag", sessions, f"{n} questions over {documents} shared documents of {doc_tokens} tokens"
    )


_ID_WORDS = tuple(dict.fromkeys(_VOCAB))  # the vocabulary without repeats: digits of a request's id


def _id_words(i: int, width: int) -> list[str]:
    """``i`` written in base ``len(_ID_WORDS)`` as ``width`` words, least significant first (so neighbours
    differ in their very first token)."""
    digits = []
    for _ in range(width):
        i, d = divmod(i, len(_ID_WORDS))
        digits.append(_ID_WORDS[d])
    return digits


def random_prompts(
    n: int = 100, *, prompt_tokens: int = 256, max_tokens: int = 64, seed: int = 0
) -> Workload:
    """Unique prompts with no shared prefix: cache-cold traffic, where routing can only balance load.

    Each prompt is exactly ``prompt_tokens`` words, its id included: the first words spell the request's
    number (so no two prompts share a first token block), the rest are random. Every vocabulary word is one
    token for the lab's tokenizer with or without a leading space, so the pods count exactly
    ``prompt_tokens`` (+ the chat template's tokens); a real model's tokenizer counts about as many.
    """
    rng = random.Random(seed)
    width = 2
    while len(_ID_WORDS) ** width < n:
        width += 1
    if prompt_tokens < width:
        raise ValueError(f"prompt_tokens={prompt_tokens} cannot hold a {width}-word request id")
    sessions = [
        Session(
            [" ".join([*_id_words(i, width), *words(rng, prompt_tokens - width).split()])],
            max_tokens=max_tokens,
            tags={"session": i, "turn": 0},
        )
        for i in range(n)
    ]
    return Workload("random", sessions, f"{n} unique {prompt_tokens}-token prompts")


# rh-aiservices-bu/rhaoi3-llm-d@891558ab:guidellm/seed-documents: 11 documents (name, kind, size in characters).
REFERENCE_DOCUMENTS: tuple[tuple[str, str, int], ...] = (
    ("01-python-ecommerce.py", "code", 24572),
    ("02-distributed-systems-whitepaper.md", "text", 13856),
    ("03-kubernetes-controller.go", "code", 20255),
    ("04-machine-learning-research.md", "text", 12199),
    ("05-rust-async-runtime.rs", "code", 22646),
    ("06-financial-analysis.md", "text", 13827),
    ("07-react-dashboard.tsx", "code", 50390),
    ("08-medical-research.md", "text", 20335),
    ("09-database-schema.sql", "code", 47346),
    ("10-water-treatment.md", "text", 29346),
    ("11-compiler-design.md", "text", 56176),
)
# Characters per token of a BPE tokenizer (Qwen's) on source code and on English prose: an estimate
# (unconfirmed for these exact files), used only to size the stand-in documents.
CHARS_PER_TOKEN = {"code": 3.5, "text": 4.3}
_CODE_WORDS = "def return self value result item order user config client error await async fn let mut".split()
_CODE_PUNCT = ("(", ")", ":", ".", ",", " =", " {", " }", ";", " ->", "[", "]")
_ASKS = {
    "code": ("Find the bugs in this code:", "Explain what each function in this code does:",
             "Suggest how to make this code faster:", "List the security problems in this code:"),
    "text": ("Summarise this document:", "List the key points of this document:",
             "Explain the main ideas of this document:", "Write an executive summary of this document:"),
}  # fmt: skip
_FOLLOW_UPS = {
    "code": ("Look again: are there more issues?", "Explain that fix in more detail.", "How should errors be handled?",
             "Which edge cases are missing?", "Show the corrected code.", "Which tests would you add?"),
    "text": ("Make that longer and more detailed.", "Now make it shorter.", "Focus on the technical side.",
             "What are the practical consequences?", "Say it in simpler words.", "What does it leave open?"),
}  # fmt: skip


def _code(rng: random.Random, tokens: int) -> str:
    """Code-shaped text of about ``tokens`` tokens: identifiers and punctuation, one statement per line."""
    out, n = [], 0
    while n < tokens:
        line = [rng.choice(_CODE_WORDS) + rng.choice(_CODE_PUNCT) for _ in range(rng.randint(3, 7))]
        out.append("    " + " ".join(line))
        n += 2 * len(line) + 1
    return "\n".join(out)


def reference_multi_turn(
    conversations: int = 11, turns: int = 10, *, max_tokens: int = 150, seed: int = 0
) -> Workload:
    """The reference repository's multi-turn benchmark (rh-aiservices-bu/rhaoi3-llm-d guidellm/multi-turn-benchmark.py).

    One conversation per seed document (cycling when there are more conversations than documents): turn 1 asks
    about the whole document, later turns are short follow-ups on the growing history, ``max_tokens`` each.
    Documents are stand-ins of the originals' kind (code or prose) and estimated token size, not their text.
    Its published table (``benchmarks.md``) is 11 conversations × 10 turns = 110 requests, though the command
    above it says ``--conversations 20``; ``pacing`` holds its 4 workers and 0.5-2 s think time per turn.
    """
    rng = random.Random(seed)
    docs = []
    for name, kind, chars in REFERENCE_DOCUMENTS:
        size = round(chars / CHARS_PER_TOKEN[kind])
        body = _code(rng, size) if kind == "code" else words(rng, size)
        docs.append((name, kind, f"{name}\n{body}"))
    sessions = []
    for c in range(conversations):
        name, kind, body = docs[c % len(docs)]
        first = f"{_ASKS[kind][c % len(_ASKS[kind])]}\n\n```\n{body}\n```"
        follow = [rng.choice(_FOLLOW_UPS[kind]) for _ in range(turns - 1)]
        sessions.append(Session([first, *follow], max_tokens=max_tokens,
                                tags={"session": c, "document": name, "kind": kind}))  # fmt: skip
    return Workload(
        "reference-multi-turn", sessions,
        f"rhaoi3-llm-d multi-turn: {conversations} conversations × {turns} turns over 11 code/prose documents, "
        f"{max_tokens} max tokens, 4 workers, 0.5-2 s think time",
        pacing={"workers": 4, "think_time_s": (0.5, 2.0), "interleave_turns": True},
    )  # fmt: skip


WORKLOADS = {
    "repeated-prompt": repeated_prompt,
    "shared-system-prompt": shared_system_prompt,
    "multi-turn": multi_turn,
    "rag": rag,
    "random": random_prompts,
    "reference-multi-turn": reference_multi_turn,
}
