"""Workload generators: deterministic shapes with the prefix structure each one promises."""

from __future__ import annotations

import pytest

from llmd_lab import traffic


def test_generators_are_deterministic_under_seed():
    for make in traffic.WORKLOADS.values():
        a, b, c = make(seed=1), make(seed=1), make(seed=2)
        assert [s.turns for s in a] == [s.turns for s in b]
        assert [[*s.turns, s.system or ""] for s in a] != [[*s.turns, s.system or ""] for s in c]


def test_multi_turn_is_step08_shape():
    wl = traffic.multi_turn()
    assert len(wl.sessions) == 20 and len(wl) == 120
    assert len({s.system for s in wl}) == 20


def test_prefix_structure():
    rep = traffic.repeated_prompt(5)
    assert len({s.turns[0] for s in rep}) == 1
    shared = traffic.shared_system_prompt(10)
    assert len({s.system for s in shared}) == 1 and len({s.turns[0] for s in shared}) == 10
    rag = traffic.rag(40, documents=3)
    assert {s.tags["document"] for s in rag} == {0, 1, 2}
    cold = traffic.random_prompts(30)
    firsts = {s.turns[0].split()[0] + s.turns[0].split()[1] for s in cold}
    assert len(firsts) == 30  # no two share even their first two words


def test_reference_multi_turn_has_the_reference_repository_shape():
    wl = traffic.reference_multi_turn()
    assert len(wl.sessions) == 11 and len(wl) == 110  # the published table: 11/11 conversations, 110 requests
    assert all(s.max_tokens == 150 for s in wl)
    assert {s.tags["kind"] for s in wl} == {"code", "text"}
    assert len({s.tags["document"] for s in wl}) == 11
    firsts = [len(s.turns[0].split()) for s in wl]
    assert min(firsts) > 2000 and max(firsts) > 10_000  # long seed documents; follow-ups are short
    assert all(len(t.split()) < 20 for s in wl for t in s.turns[1:])
    assert wl.pacing == {"workers": 4, "think_time_s": (0.5, 2.0), "interleave_turns": True}
    twenty = traffic.reference_multi_turn(20)
    assert len(twenty) == 200 and twenty.sessions[11].tags["document"] == twenty.sessions[0].tags["document"]


def test_random_prompts_are_exactly_the_asked_token_count_id_included():
    from tokenizers import Tokenizer

    from llmd_lab.tokenizer import TOKENIZER_DIR

    tok = Tokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json"))
    for n, prompt_tokens in ((30, 256), (7000, 40), (3, 2)):  # 7000 > 81² ids: a third id word
        prompts = [s.turns[0] for s in traffic.random_prompts(n, prompt_tokens=prompt_tokens, seed=3)]
        assert {len(tok.encode(p, add_special_tokens=False).ids) for p in prompts} == {prompt_tokens}
        assert len({tuple(p.split()[:3]) for p in prompts}) == n  # the id keeps every prompt distinct
    firsts = [s.turns[0].split()[0] for s in traffic.random_prompts(5)]
    assert len(set(firsts)) == 5  # neighbours differ in their first token, not only later
    with pytest.raises(ValueError, match="request id"):
        traffic.random_prompts(3, prompt_tokens=1)
