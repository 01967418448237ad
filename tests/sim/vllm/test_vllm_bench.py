"""``llmd-lab bench sim`` runs end to end on tiny settings and prints every section."""

from __future__ import annotations

import json

from llmd_lab.cli import main


def test_bench_sim_prints_all_sections(capsys):
    argv = ["bench", "sim", "--rounds", "1", "--prompt-len", "64", "--output-len", "4", "--http-requests", "8",
            "--http-concurrency", "4"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Throughput vs concurrency" in out and "TTFT with a 4,000-token shared prefix" in out
    assert "HTTP load on this machine" in out and "(8 ok)" in out
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["sweep"]
    assert {r["concurrency"] for r in rows} == {1, 2, 4, 8, 16, 32, 64}
    for p in data["prefix_ttft"].values():
        assert p["warm"] < p["cold"] and p["warm_cached_tokens"] == 4000
