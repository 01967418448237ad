"""``llmd-lab bench fidelity`` runs and every row names its source, figures and subset; the front-end delay."""

from __future__ import annotations

import json

import pytest
from vllm_helpers import make_engine, request

from llmd_lab.cli import main
from llmd_lab.sim.vllm import physics

ROW_FIELDS = {"source", "title", "url", "date", "model", "gpu", "shape", "load", "metric", "published", "simulated",
              "error", "subset"}  # fmt: skip


def test_bench_fidelity_rows_carry_source_figures_and_subset(capsys):
    assert main(["bench", "fidelity", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["rows"]
    assert rows and all(ROW_FIELDS <= set(r) for r in rows)
    assert {r["subset"] for r in rows} == {"fit", "check"}
    assert len({(r["model"], r["gpu"]) for r in rows}) >= 3
    for r in rows:
        assert r["url"].startswith("https://") and r["date"]
        assert r["error"] == pytest.approx((r["simulated"] - r["published"]) / r["published"], abs=1e-3)
    assert main(["bench", "fidelity"]) == 0
    out = capsys.readouterr().out
    assert "published" in out and "simulated" in out and "sources:" in out and "check:" in out


def test_request_reaches_the_scheduler_after_the_api_server_delay():
    eng = make_engine(frontend_request_s=0.02, frontend_per_running_seq_s=0.003)
    eng.add_request(request("a", list(range(100)), max_tokens=50, ignore_eos=True))
    first = eng.step(0.0)
    assert first.outputs == [] and first.duration_s == pytest.approx(0.02)  # idle until it leaves the API server
    now = first.duration_s
    now += eng.step(now).duration_s  # "a" prefilled, running
    eng.add_request(request("b", list(range(500, 600)), max_tokens=1, arrival=now))
    ready = now + physics.frontend_delay_s(1, frontend_request_s=0.02, frontend_per_running_seq_s=0.003)
    while True:
        r = eng.step(now)
        scheduled_b = [o for o in r.outputs if o.request_id == "b"]
        if scheduled_b:
            assert scheduled_b[0].scheduled_time >= ready - 1e-9
            assert scheduled_b[0].first_token_time - scheduled_b[0].arrival_time > 0.023
            break
        now += r.duration_s
