"""Workload generators: the request shapes that show (or hide) what KV-cache-aware routing buys.

A :class:`Workload` is a list of :class:`Session` objects. A session is a sequence of user turns sent in
order on one growing conversation (the runner appends each reply before the next turn), so one
shape covers single requests (one turn) and multi-turn chat (step-08: 20 conversations × 6 turns).
Every generator is deterministic under its ``seed``: the same call gives the same prompts, so two
runs (llm-d vs round-robin) see identical traffic.

Text is made of words from a fixed vocabulary; one word is roughly one token for the tokenizers the
workshop uses, which is all the shapes need (long shared prefixes vs unique ones).
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
    """A named list of sessions; ``len(workload)`` is the number of requests it sends."""

    name: str
    sessions: list[Session]
    description: str = ""

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


def random_prompts(
    n: int = 100, *, prompt_tokens: int = 256, max_tokens: int = 64, seed: int = 0
) -> Workload:
    """Unique prompts with no shared prefix: cache-cold traffic, where routing can only balance load."""
    rng = random.Random(seed)
    sessions = [
        Session(
            [f"{i} {rng.getrandbits(64):x} " + words(rng, prompt_tokens)],
            max_tokens=max_tokens,
            tags={"session": i, "turn": 0},
        )
        for i in range(n)
    ]
    return Workload("random", sessions, f"{n} unique {prompt_tokens}-token prompts")


WORKLOADS = {
    "repeated-prompt": repeated_prompt,
    "shared-system-prompt": shared_system_prompt,
    "multi-turn": multi_turn,
    "rag": rag,
    "random": random_prompts,
}
