"""Charts for the workshop: altair specs and the routing explainer (the live panel is :mod:`llmd_lab.live`).

Every chart function takes the DataFrames the library produces (``traffic.run``/``compare`` rows,
``metrics.deltas`` rows, a rate-sweep table) and returns an ``altair.Chart`` that renders in Jupyter
and exports without a browser through vl-convert (:func:`save`, :func:`to_png`, :func:`to_svg`) for CI
and the course site.

The routing explainer draws one EPP decision trace (per-pod raw and weighted score per scorer, the
total, the pick). Traces come from the lab's EPP (``/debug/traces/<request-id>``); the EPP shipped
with OpenShift AI has no such endpoint, so on a cluster the explainer says so instead of guessing.
Fetching a trace is network I/O and lives in :func:`llmd_lab.doctor.route_trace`; this module only draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import vl_convert as vlc

TRACES_LAB_ONLY = (
    "Routing traces are a feature of the local lab's endpoint picker. The EPP shipped with OpenShift AI "
    "does not expose per-request decisions; on a cluster, read routing from requests per pod and the "
    "prefix-cache hit rate per pod instead."
)


#: Human axis titles for the columns the library's frames carry. Seconds are drawn in ms and fractions in %, so
#: one quantity has one unit on every chart of the course (the live panel, :mod:`llmd_lab.live`, does the same).
TITLES: dict[str, str] = {
    "ttft_s": "TTFT (ms)", "itl_mean_s": "mean inter-token latency (ms)", "ttft_p50_s": "TTFT p50 (ms)",
    "ttft_p95_s": "TTFT p95 (ms)", "ttft_p99_s": "TTFT p99 (ms)", "ttft_p95_ms": "TTFT p95 (ms)",
    "engine_ttft_p95_ms": "engine TTFT p95 (ms)", "requests_per_s": "requests per second",
    "kv_cache_usage": "KV-cache use (%)", "hit_rate": "prefix-cache hit rate (%)", "waiting": "requests waiting",
    "running": "requests running", "rate": "offered load (conversations started per second)",
    # GuideLLM's report (llmd_lab.benchtools), already in ms
    "ttft_p50_ms": "TTFT p50 (ms)", "ttft_p99_ms": "TTFT p99 (ms)", "itl_p50_ms": "inter-token latency p50 (ms)",
    "output_tokens_per_s": "output tokens per second", "concurrency": "concurrent streams",
    "strategy": "GuideLLM profile",
}  # fmt: skip
_PERCENT = {"kv_cache_usage", "hit_rate"}
#: Columns in seconds, drawn in ms. Named one by one: a ``_s`` suffix also ends ``requests_per_s`` (a rate),
#: which a suffix rule once drew ×1000 (notebook 04 showed ~5,500 requests per second for a few).
_SECONDS = {"ttft_s", "itl_mean_s", "ttft_p50_s", "ttft_p95_s", "ttft_p99_s"}


def _human(data: pd.DataFrame, column: str) -> tuple[pd.DataFrame, str, str]:
    """``data`` with ``column`` converted for display (s → ms, fraction → %), the field to plot, its title."""
    if column in _SECONDS:
        field = column[:-2] + "_ms"
        return data.assign(**{field: data[column] * 1000}), field, TITLES[column]
    if column in _PERCENT:
        return data.assign(**{f"{column}_pct": data[column] * 100}), f"{column}_pct", TITLES[column]
    return data, column, TITLES.get(column, column.replace("_", " "))


def _ms(df: pd.DataFrame, col: str = "ttft_s") -> pd.DataFrame:
    out = df[df["ok"]].copy() if "ok" in df else df.copy()
    out["ttft_ms"] = out[col] * 1000
    return out


def ttft_distribution(df: pd.DataFrame, by: str = "mode") -> alt.Chart:
    """Box plot of TTFT (ms) per ``by`` group, log scale — the tail is the story."""
    data = _ms(df)[[by, "ttft_ms"]].dropna()
    return (
        alt.Chart(data, title="Time to first token")
        .mark_boxplot(extent="min-max")
        .encode(
            x=alt.X(f"{by}:N", title=by),
            y=alt.Y("ttft_ms:Q", title="TTFT (ms)", scale=alt.Scale(type="log")),
            color=alt.Color(f"{by}:N", legend=None),
        )
    )


def ttft_percentiles(
    df: pd.DataFrame, by: str = "mode", quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
) -> alt.Chart:
    """Grouped bars of TTFT p50/p95/p99 (ms) per ``by`` group, labelled with the value."""
    data = _ms(df)
    rows = [
        {by: key, "percentile": f"p{round(q * 100)}", "ttft_ms": float(g["ttft_ms"].quantile(q))}
        for key, g in data.groupby(by, sort=False)
        for q in quantiles
        if g["ttft_ms"].notna().any()
    ]
    table = pd.DataFrame(rows)
    base = alt.Chart(table, title="TTFT percentiles").encode(
        x=alt.X("percentile:N", title=None),
        xOffset=alt.XOffset(f"{by}:N"),
        y=alt.Y("ttft_ms:Q", title="TTFT (ms)"),
        color=alt.Color(f"{by}:N", title=by),
    )
    return base.mark_bar() + base.mark_text(dy=-6, fontSize=10).encode(
        text=alt.Text("ttft_ms:Q", format=".0f")
    )


def requests_per_pod(df: pd.DataFrame, by: str = "mode") -> alt.Chart:
    """Stacked bars: which pods served each group's requests (round-robin spreads, llm-d concentrates)."""
    data = (
        df.assign(pod=df["pod"].fillna("(unknown)"))
        .groupby([by, "pod"])
        .size()
        .rename("requests")
        .reset_index()
    )
    return (
        alt.Chart(data, title="Requests per pod")
        .mark_bar()
        .encode(
            x=alt.X(f"{by}:N", title=by),
            y=alt.Y("requests:Q"),
            color=alt.Color("pod:N"),
            tooltip=[by, "pod", "requests"],
        )
    )


def hit_rate_per_pod(deltas: pd.DataFrame) -> alt.Chart:
    """Prefix-cache hit rate per pod from :func:`llmd_lab.metrics.deltas` (0–100 %)."""
    data = deltas.dropna(subset=["hit_rate"]).assign(hit_pct=lambda d: d["hit_rate"] * 100)
    return (
        alt.Chart(data, title="Prefix-cache hit rate per pod")
        .mark_bar()
        .encode(
            x=alt.X("pod:N"),
            y=alt.Y("hit_pct:Q", title="hit rate (%)", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("pod:N", legend=None),
            tooltip=["pod", alt.Tooltip("hit_pct:Q", format=".1f"), "requests"],
        )
    )


def rate_sweep(
    table: pd.DataFrame,
    *,
    x: str = "rate",
    y: str = "ttft_p95_ms",
    by: str = "mode",
    slo_ms: float | None = None,
) -> alt.Chart:
    """Latency vs offered load, one line per ``by`` group; a dashed rule marks the SLO if given."""
    table, y_field, y_title = _human(table, y)
    x_title = TITLES.get(x, x)
    whole = pd.api.types.is_integer_dtype(table[x])  # stream counts: no "1.5 streams" ticks
    lines = (
        alt.Chart(table, title=f"{y_title} against {x_title.split(' (')[0]}")
        .mark_line(point=True)
        .encode(
            x=alt.X(f"{x}:Q", title=x_title,
                    axis=alt.Axis(values=sorted({int(v) for v in table[x]}), format="d") if whole else alt.Axis()),
            y=alt.Y(f"{y_field}:Q", title=y_title),
            color=alt.Color(f"{by}:N", title=TITLES.get(by, by)),
            tooltip=[by, x, y_field],
        )
    )
    if slo_ms is None:
        return lines
    rule = (
        alt.Chart(pd.DataFrame({"slo": [slo_ms]})).mark_rule(strokeDash=[6, 4], color="red").encode(y="slo:Q")
    )
    return lines + rule


def timeline(df: pd.DataFrame, *, y: str = "ttft_s", color: str = "pod") -> alt.Chart:
    """Each request as a point: send time (s from start) vs ``y`` (TTFT ms by default), coloured by pod."""
    data, field, y_title = _human(_ms(df) if y == "ttft_s" else df.copy(), y)
    data[color] = data[color].fillna("(unknown)") if color in data else "(all)"
    return (
        alt.Chart(data, title="Requests over time")
        .mark_circle(size=30, opacity=0.7)
        .encode(
            x=alt.X("t_s:Q", title="time since start (s)"),
            y=alt.Y(f"{field}:Q", title=y_title),
            color=alt.Color(f"{color}:N"),
            tooltip=["request_id", color, field],
        )
    )


def metric_timeline(frame: pd.DataFrame, metric: str = "kv_cache_usage") -> alt.Chart:
    """A per-pod line of one column of :meth:`llmd_lab.metrics.Poller.frame` over time.

    Time is drawn as seconds since the first reading, not the clock: a short run spans less than a second of
    clock time, which a time axis labels ".800 .800"."""
    data, field, title = _human(frame.dropna(subset=[metric]), metric)
    times = pd.to_datetime(data["time"])
    data = data.assign(t_s=(times - times.min()).dt.total_seconds())
    return (
        alt.Chart(data, title=title[0].upper() + title[1:])
        .mark_line(point=True)
        .encode(x=alt.X("t_s:Q", title="time since the first reading (s)",
                        axis=alt.Axis(tickCount=6, labelOverlap="greedy")), y=alt.Y(f"{field}:Q", title=title),
                color=alt.Color("pod:N", legend=alt.Legend(labelLimit=400)))
    )


def predicted_vs_measured(
    table: pd.DataFrame,
    x: str = "pattern",
    predicted: str = "predicted",
    measured: str = "measured",
    *,
    title: str = "Predicted vs measured",
    y_title: str | None = None,
    percent: bool = False,
) -> alt.LayerChart:
    """Bars of the measured value per ``x`` with a black tick at the prediction, so the gap reads at a glance.

    ``table`` has one row per ``x`` (a prompt pattern, a layout, a scorer setting) with both numbers;
    rows missing either value are left out rather than drawn as zero. ``percent=True`` draws fractions
    (hit rates) as 0–100 %, the one unit every chart of the course uses for rates.
    """
    missing = [c for c in (x, predicted, measured) if c not in table]
    if missing:
        raise ValueError(f"table has no column(s) {missing}; columns are {list(table.columns)}")
    data = table[[x, predicted, measured]].dropna()
    y_axis = y_title or measured
    scale = alt.Undefined
    if percent:
        data = data.assign(**{predicted: data[predicted] * 100, measured: data[measured] * 100})
        y_axis, scale = (y_axis if y_axis.endswith("(%)") else f"{y_axis} (%)"), alt.Scale(domain=[0, 100])
    base = alt.Chart(data, title=title).encode(
        x=alt.X(f"{x}:N", title=x, sort=None),
        tooltip=[x, alt.Tooltip(f"{measured}:Q", format=".3g"), alt.Tooltip(f"{predicted}:Q", format=".3g")],
    )
    bars = base.mark_bar(opacity=0.8).encode(y=alt.Y(f"{measured}:Q", title=y_axis, scale=scale))
    ticks = base.mark_tick(color="black", thickness=3, size=30).encode(y=alt.Y(f"{predicted}:Q"))
    return alt.layer(bars, ticks)


# ------------------------------------------------------------------------------------------------- export
RENDERERS_OFFLINE = ("svg", "png")


def setup(renderer: str = "svg") -> str:
    """Make altair charts display without a network; returns the renderer now active.

    Altair's default renderer loads Vega from a CDN in the browser, so nothing shows on a disconnected
    cluster or in a saved notebook, and JupyterLab 4 has no built-in renderer for Vega-Lite v6. The
    ``svg`` (or ``png``) renderer draws in the kernel with vl-convert and sends a static image, which
    also survives ``nbconvert``/papermill. ``import llmd_lab.viz`` calls ``setup()`` unless you already
    chose a renderer; call ``setup("default")`` to get interactive charts back.
    """
    if renderer not in alt.renderers.names():
        raise ValueError(f"unknown altair renderer {renderer!r}; choose one of {sorted(alt.renderers.names())}")
    alt.renderers.enable(renderer)
    return alt.renderers.active


def to_png(chart: alt.TopLevelMixin, scale: float = 2.0) -> bytes:
    """PNG bytes via vl-convert (no browser)."""
    return vlc.vegalite_to_png(chart.to_json(), scale=scale)


def to_svg(chart: alt.TopLevelMixin) -> str:
    """SVG text via vl-convert (no browser)."""
    return vlc.vegalite_to_svg(chart.to_json())


def save(chart: alt.TopLevelMixin, path: str | Path) -> Path:
    """Write ``.png``, ``.svg`` or ``.json`` (the Vega-Lite spec) by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        path.write_bytes(to_png(chart))
    elif suffix == ".svg":
        path.write_text(to_svg(chart))
    elif suffix == ".json":
        path.write_text(chart.to_json())
    else:
        raise ValueError(f"save to .png, .svg or .json, not {suffix or 'no suffix'}")
    return path


# ------------------------------------------------------------------------------------------------- routing
def trace_frame(trace: Mapping[str, Any]) -> pd.DataFrame:
    """A decision trace as rows: profile, scorer, weight, pod, raw score, weighted score, picked."""
    rows = []
    for prof in trace.get("profiles", []):
        picked = set(prof.get("picked") or [])
        for sc in prof.get("scorers", []):
            for pod, raw in sc.get("raw", {}).items():
                rows.append({
                    "profile": prof["name"], "scorer": sc.get("plugin") or sc.get("type"), "weight": sc.get("weight"),
                    "pod": pod, "raw": raw, "weighted": sc.get("weighted", {}).get(pod), "picked": pod in picked,
                })  # fmt: skip
    return pd.DataFrame(rows, columns=["profile", "scorer", "weight", "pod", "raw", "weighted", "picked"])


def explain_route(trace: Mapping[str, Any] | None, *, on_cluster: bool = False) -> alt.Chart | str:
    """Chart one EPP decision: stacked weighted scores per pod per scorer, the picked pod outlined.

    Returns a plain-language message instead when there is no trace (``on_cluster=True`` says that
    traces only exist in the lab).
    """
    if trace is None:
        return (
            TRACES_LAB_ONLY
            if on_cluster
            else "No trace for this request id (the EPP keeps only recent ones)."
        )
    if trace.get("error"):
        return f"The EPP rejected request {trace.get('request_id')}: {trace['error']}"
    data = trace_frame(trace)
    if data.empty:
        return f"Request {trace.get('request_id')} went to {trace.get('picked') or '?'} without scoring ({trace.get('reason', '')})."
    title = f"Request {str(trace.get('request_id', ''))[:8]} → {trace.get('picked', '?')}"
    return (
        alt.Chart(data, title=title)
        .mark_bar()
        .encode(
            x=alt.X("pod:N", title=None),
            y=alt.Y("sum(weighted):Q", title="weighted score"),
            color=alt.Color("scorer:N"),
            stroke=alt.condition(alt.datum.picked, alt.value("black"), alt.value(None)),
            strokeWidth=alt.condition(alt.datum.picked, alt.value(2), alt.value(0)),
            column=alt.Column("profile:N", title=None),
            tooltip=[
                "scorer",
                "weight",
                "pod",
                alt.Tooltip("raw:Q", format=".3f"),
                alt.Tooltip("weighted:Q", format=".3f"),
            ],
        )
    )


def explain_route_text(trace: Mapping[str, Any] | None, *, on_cluster: bool = False) -> str:
    """The same decision as a few sentences (for logs, tests and screen readers)."""
    if trace is None:
        return TRACES_LAB_ONLY if on_cluster else "No trace for this request id."
    if trace.get("error"):
        return f"rejected: {trace['error']}"
    lines = [f"request {trace.get('request_id')} (model {trace.get('model')}) → {trace.get('picked') or '?'}"]
    for prof in trace.get("profiles", []):
        totals = prof.get("totals") or {}
        ranked = ", ".join(f"{p} {v:.2f}" for p, v in sorted(totals.items(), key=lambda kv: -kv[1]))
        lines.append(
            f"  profile {prof['name']}: totals {ranked}; picked {', '.join(prof.get('picked') or []) or '-'}"
        )
        for sc in prof.get("scorers", []):
            raw = ", ".join(f"{p} {v:.2f}" for p, v in sc.get("raw", {}).items())
            lines.append(f"    {sc.get('plugin')} ×{sc.get('weight')}: {raw}")
    return "\n".join(lines)


if alt.renderers.active == "default":  # respect a renderer the user already chose
    setup()
