"""``llmd-lab bench reference`` prints the reference repository's table shape and the gap to it."""

from __future__ import annotations

import json

from llmd_lab.bench.reference import METRICS, PUBLISHED
from llmd_lab.cli import main

SMALL = ["bench", "reference", "--conversations", "4", "--turns", "3", "--max-tokens", "16"]


def test_bench_reference_prints_the_reference_table_and_gap(capsys):
    assert main(SMALL) == 0
    out = capsys.readouterr().out
    for metric in METRICS:
        assert metric in out
    assert "llm-d lab" in out and "RR lab" in out and "gap" in out and "Why the lab differs" in out
    assert "P95 TTFT llm-d vs round-robin" in out and "TTFT by turn" in out
    assert main([*SMALL, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["lab"]) == {"llm-d", "round-robin", "random"}
    for result in data["lab"].values():
        assert result["requests"] == 12 and set(METRICS) <= set(result)
        assert set(result["by_turn"]) == {"1", "2", "3"}  # JSON keys
    assert set(PUBLISHED) == {"llm-d", "round-robin"}
