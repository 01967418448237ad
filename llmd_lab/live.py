"""The live metrics panel: four sparklines that redraw in place while traffic runs, and stay a static chart.

TTFT p50/p95 (ms), prefix-cache hit rate (%), KV-cache use (%, the fullest pod) and queue depth (requests
waiting, all pods) over time, pool-wide, from a :class:`llmd_lab.metrics.Poller`::

    panel = live.LivePanel("qwen: vLLM pods")
    poller = panel.watch(source, interval_s=1)  # shows the panel and starts a Poller feeding it
    ...  # traffic
    poller.stop()
    panel.finish()  # the final state, as a static chart

Why not ipywidgets: a widget's state lives in the kernel, so a saved notebook (and the course site, and
nbconvert) shows "Error displaying widget" once the kernel is gone. The panel is a plain display output
(a vl-convert SVG, like every chart of :mod:`llmd_lab.viz`) updated in place through its display id
(``update_display_data``): JupyterLab redraws it, and nbclient (papermill, CI) rewrites the stored output,
so the saved notebook holds the last state as an ordinary image.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import altair as alt
import pandas as pd

from llmd_lab import metrics
from llmd_lab.connection import Connection

#: One sparkline per row: (column, title with its unit, y-axis title, value format).
SPARKLINES = (
    ("ttft_ms", "Time to first token (ms): p50 and p95", "TTFT (ms)"),
    ("hit_rate_pct", "Prefix-cache hit rate (%)", "hit rate (%)"),
    ("kv_cache_pct", "KV-cache use, fullest pod (%)", "KV cache (%)"),
    ("waiting", "Queue depth (requests waiting, all pods)", "requests"),
)


def _pct(value: float | None) -> float | None:
    return None if value is None or pd.isna(value) else 100.0 * float(value)


def reading(frame: pd.DataFrame, before: metrics.Snapshot | None, after: metrics.Snapshot | None,
            elapsed_s: float) -> dict[str, Any]:
    """One point of every sparkline from one poll interval: pool-wide, not per pod."""
    ttft = metrics.pool_quantiles(before, after, q=(0.5, 0.95)) if before and after else {}
    queries = frame["prefix_cache_queries"].fillna(0).sum() if "prefix_cache_queries" in frame else 0
    hits = frame["prefix_cache_hits"].fillna(0).sum() if "prefix_cache_hits" in frame else 0
    kv = frame["kv_cache_usage"].max() if "kv_cache_usage" in frame and frame["kv_cache_usage"].notna().any() else None
    waiting = frame["waiting"].fillna(0).sum() if "waiting" in frame else None
    return {
        "time_s": round(elapsed_s, 2),
        "ttft_p50_ms": None if ttft.get(0.5) is None else 1000.0 * ttft[0.5],
        "ttft_p95_ms": None if ttft.get(0.95) is None else 1000.0 * ttft[0.95],
        "hit_rate_pct": 100.0 * hits / queries if queries else None,
        "kv_cache_pct": _pct(kv),
        "waiting": None if waiting is None else float(waiting),
        "pods": len(frame),
    }


def chart(history: pd.DataFrame, title: str = "vLLM pods") -> alt.VConcatChart:
    """The panel's four sparklines over ``history`` (rows from :func:`reading`); empty rows draw empty axes."""
    data = history if len(history) else pd.DataFrame(columns=["time_s", "ttft_p50_ms", "ttft_p95_ms",
                                                               "hit_rate_pct", "kv_cache_pct", "waiting"])
    x = alt.X("time_s:Q", title="time since the panel started (s)",
              axis=alt.Axis(tickCount=6, labelOverlap="greedy"))  # a short run: ticks 0.05 s apart ran together
    ttft = data.melt(id_vars=["time_s"], value_vars=["ttft_p50_ms", "ttft_p95_ms"], var_name="percentile",
                     value_name="ttft_ms").dropna()
    ttft["percentile"] = ttft["percentile"].str.extract(r"_(p\d+)_")[0]
    rows = [
        alt.Chart(ttft, title=SPARKLINES[0][1], height=60, width=420).mark_line(point=True).encode(
            x=x, y=alt.Y("ttft_ms:Q", title=SPARKLINES[0][2]),
            color=alt.Color("percentile:N", title="percentile", scale=alt.Scale(range=["#0066cc", "#c9190b"]))),
    ]
    for column, name, y_title in SPARKLINES[1:]:
        domain = [0, 100] if column.endswith("_pct") else alt.Undefined
        rows.append(alt.Chart(data[["time_s", column]].dropna(), title=name, height=60, width=420)
                    .mark_area(line=True, point=True, opacity=0.3)  # points: one reading still shows
                    .encode(x=x, y=alt.Y(f"{column}:Q", title=y_title, scale=alt.Scale(domain=domain))))
    return alt.vconcat(*rows, title=title).resolve_scale(color="independent")


class LivePanel:
    """Sparklines that redraw in place on every :class:`~llmd_lab.metrics.Poller` reading (its ``on_update``)."""

    def __init__(self, title: str = "vLLM pods", *, max_points: int = 300):
        self.title = title
        self.max_points = max_points
        self.rows: list[dict[str, Any]] = []
        self.updates = 0
        self.errors: list[str] = []
        self._previous: metrics.Snapshot | None = None
        self._started = time.monotonic()
        self._handle: Any = None
        self._poller: metrics.Poller | None = None
        self._lock = threading.Lock()

    def history(self) -> pd.DataFrame:
        """Every reading so far: one row per poll interval."""
        with self._lock:
            return pd.DataFrame(self.rows)

    def chart(self) -> alt.VConcatChart:
        n = len(self.rows)
        return chart(self.history(), f"{self.title} — {n} reading{'s' if n != 1 else ''}")

    def show(self) -> None:
        """Display the panel in the current cell; later updates redraw this output in place."""
        from IPython.display import display

        self._started = time.monotonic()
        self._handle = display(self.chart(), display_id=True)

    def watch(self, source: metrics.MetricsSource, interval_s: float = 2.0) -> metrics.Poller:
        """Show the panel and start a :class:`~llmd_lab.metrics.Poller` that feeds it; stop the poller when done."""
        self.show()
        self._poller = metrics.Poller(source, interval_s=interval_s, on_update=self.update)
        return self._poller.start()

    def update(self, frame: pd.DataFrame, snapshot: metrics.Snapshot | None = None) -> None:
        """Add one interval's reading and redraw (the Poller's ``on_update(frame, snapshot)`` signature)."""
        # During the callback the poller still holds the interval's first snapshot: the TTFT histogram's change
        # is exact from the very first reading when the panel started the poller itself.
        snaps = self._poller.snapshots if self._poller is not None else []
        before = snaps[-1] if snaps and snaps[-1] is not snapshot else self._previous
        row = reading(frame, before, snapshot, time.monotonic() - self._started)
        with self._lock:
            self._previous = snapshot if snapshot is not None else self._previous
            self.rows = [*self.rows, row][-self.max_points:]
            self.updates += 1
        self._redraw()

    def _redraw(self) -> None:
        if self._handle is None:
            return
        try:
            self._handle.update(self.chart())
        except Exception as exc:  # a failed redraw must not stop the poller; finish() shows the state
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def finish(self) -> alt.VConcatChart:
        """Redraw the panel a last time and return the final chart (display it to keep a copy in this cell)."""
        self._redraw()
        return self.chart()


#: The shipped dashboard for a cluster (assets/dashboards/llmd-openshift.json) and its uid.
DASHBOARD_FILE = "assets/dashboards/llmd-openshift.json"
DASHBOARD_UID = "llmd-workshop-openshift"


def grafana_dashboard(conn: Connection) -> str:
    """Where to open the shipped Grafana dashboard on this cluster, or how to get one.

    OpenShift's own monitoring has no Grafana: the course's dashboard lives in a Grafana the instructor installs
    (the community Grafana operator, for example) and reaches through a Route. Attendees usually cannot list
    Routes in other projects; then the answer says what to ask for instead of guessing a URL.
    """
    from kubernetes.client.exceptions import ApiException

    from llmd_lab import k8s

    try:
        routes = [r for r in k8s.list_objects(conn, "route.openshift.io/v1", "Route")
                  if "grafana" in r["metadata"]["name"]]
    except ApiException as exc:
        if exc.status not in (401, 403):
            raise
        routes = []
    if routes:
        host = routes[0]["spec"]["host"]
        return f"Grafana dashboard: https://{host}/d/{DASHBOARD_UID}"
    return (f"no Grafana Route visible to you: ask the instructor for the dashboard link, or import {DASHBOARD_FILE} "
            "into a Grafana that reads the cluster's Thanos querier (see the course page 'Monitoring').")
