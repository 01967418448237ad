"""The live panel: pool-wide readings with units, an in-place display, and a static SVG as its saved state."""

from __future__ import annotations

import pandas as pd
import pytest

from llmd_lab import live, metrics, viz

TTFT = "vllm:time_to_first_token_seconds_bucket"


def _snapshot(t: float, counts: dict[str, list[int]]) -> metrics.Snapshot:
    """Two pods' TTFT histograms (cumulative counts at le=0.1, 0.5, +Inf)."""
    pods = {}
    for pod, (c1, c2, c3) in counts.items():
        pods[pod] = {(TTFT, (("le", "0.1"),)): c1, (TTFT, (("le", "0.5"),)): c2, (TTFT, (("le", "+Inf"),)): c3}
    return metrics.Snapshot(time=t, pods=pods)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"pod": ["a", "b"], "prefix_cache_queries": [100, 100], "prefix_cache_hits": [30, 50],
                         "kv_cache_usage": [0.2, 0.6], "waiting": [1, 2]})


def test_reading_is_pool_wide_in_human_units():
    before = _snapshot(0, {"a": [0, 0, 0], "b": [0, 0, 0]})
    after = _snapshot(1, {"a": [10, 10, 10], "b": [0, 10, 10]})
    row = live.reading(_frame(), before, after, 3.0)
    assert row["hit_rate_pct"] == pytest.approx(40.0)  # (30 + 50) / 200, not the mean of per-pod rates
    assert row["kv_cache_pct"] == pytest.approx(60.0)  # the fullest pod
    assert row["waiting"] == 3
    assert 0 < row["ttft_p50_ms"] <= 100 < row["ttft_p95_ms"] <= 500  # half the requests under 0.1 s


def test_reading_without_a_previous_snapshot_has_no_ttft():
    assert live.reading(_frame(), None, _snapshot(1, {"a": [1, 1, 1]}), 1.0)["ttft_p50_ms"] is None


class _Handle:
    def __init__(self) -> None:
        self.shown: list = []

    def update(self, obj) -> None:
        self.shown.append(obj)


def test_panel_redraws_in_place_and_finishes_as_a_static_svg():
    panel = live.LivePanel("qwen")
    panel._handle = _Handle()  # what IPython.display(..., display_id=True) returns in a kernel
    t0 = _snapshot(0, {"a": [0, 0, 0], "b": [0, 0, 0]})
    panel.update(_frame(), t0)
    panel.update(_frame().assign(waiting=[4, 4]), _snapshot(1, {"a": [5, 8, 10], "b": [2, 9, 10]}))
    assert panel.updates == 2 and len(panel._handle.shown) == 2
    history = panel.history()
    assert history["waiting"].tolist() == [3, 8] and history["ttft_p95_ms"].notna().tolist() == [False, True]
    svg = viz.to_svg(panel.finish())
    for title in ("Time to first token (ms)", "Prefix-cache hit rate (%)", "KV-cache use, fullest pod (%)",
                  "Queue depth (requests waiting, all pods)", "time since the panel started (s)", "2 readings"):
        assert title in svg, title
    assert len(panel._handle.shown) == 3  # finish() redrew the in-place output one last time


def test_empty_panel_still_renders():
    assert "<svg" in viz.to_svg(live.LivePanel().chart())


def test_a_failed_redraw_does_not_stop_the_poller():
    class Broken:
        def update(self, obj) -> None:
            raise RuntimeError("kernel gone")

    panel = live.LivePanel()
    panel._handle = Broken()
    panel.update(_frame(), None)
    assert panel.updates == 1 and panel.errors == ["RuntimeError: kernel gone"]


def test_watch_feeds_the_panel_from_its_own_poller_with_ttft_from_the_first_reading():
    class Source:
        def __init__(self) -> None:
            self.n = 0

        async def snapshot(self) -> metrics.Snapshot:
            self.n += 1
            return _snapshot(self.n, {"a": [self.n, 2 * self.n, 2 * self.n]})

    import llmd_lab.live as live_module

    panel = live_module.LivePanel("t")
    shown = _Handle()
    panel.show = lambda: setattr(panel, "_handle", shown)  # no kernel here: keep the in-place handle
    poller = panel.watch(Source(), interval_s=0.01)
    try:
        from llmd_lab import k8s

        assert k8s.wait_for(lambda: panel.updates >= 2, timeout_s=30, interval_s=0.01)
    finally:
        poller.stop()
    assert panel.history()["ttft_p50_ms"].notna().all()  # the first reading has its TTFT too
    assert shown.shown, "the panel did not redraw in place"


def test_grafana_dashboard_link_or_what_to_ask_for(monkeypatch):
    from kubernetes.client.exceptions import ApiException

    from llmd_lab import k8s

    routes = [{"metadata": {"name": "console"}, "spec": {"host": "console.apps"}},
              {"metadata": {"name": "grafana-route"}, "spec": {"host": "grafana.apps.example.com"}}]
    monkeypatch.setattr(k8s, "list_objects", lambda conn, api, kind: routes)
    assert live.grafana_dashboard(None) == "Grafana dashboard: https://grafana.apps.example.com/d/llmd-workshop-openshift"

    def forbidden(conn, api, kind):
        raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(k8s, "list_objects", forbidden)
    assert "ask the instructor" in live.grafana_dashboard(None) and live.DASHBOARD_FILE in live.grafana_dashboard(None)


def test_the_dashboard_uid_is_the_shipped_one():
    import json
    from pathlib import Path

    shipped = json.loads((Path(live.__file__).parents[1] / live.DASHBOARD_FILE).read_text())
    assert shipped["uid"] == live.DASHBOARD_UID
