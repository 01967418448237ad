"""Prometheus text exposition (format 0.0.4), byte for byte what ``prometheus_client.generate_latest`` writes.

Why not ``generate_latest`` itself: the EPP scrapes every simulated vLLM pod every 50 ms (KServe's default
refresh), and all pods live in the lab's one process. ``generate_latest`` sorts, validates and escapes every
label set of every sample on every render (about 400 lines per vLLM pod, milliseconds each), which made
rendering /metrics the largest single cost of streaming through the lab (``llmd-lab bench gateway``). A label
set of a child never changes, so its rendered form is kept; everything else follows ``generate_latest``
(the counter ``_total``/info/stateset/unknown munging, ``_created``/``_gsum``/``_gcount`` moved into gauges at
the end, ``floatToGoString`` values). Names outside the legacy character set are escaped by prometheus_client
itself. ``tests/sim/test_exposition.py`` compares both renderers' bytes.
"""

from __future__ import annotations

import re

from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter": ("_total", "counter"), "info": ("_info", "gauge"), "stateset": ("", "gauge"),
          "gaugehistogram": ("", "histogram"), "unknown": ("", "untyped")}
_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")


def _metric_name(name: str) -> str:
    return name if _LEGACY_METRIC.fullmatch(name) else openmetrics.escape_metric_name(name, openmetrics.UNDERSCORES)


def _label_name(name: str) -> str:
    return name if _LEGACY_LABEL.fullmatch(name) else openmetrics.escape_label_name(name, openmetrics.UNDERSCORES)


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _help(name: str, documentation: str) -> str:
    doc = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {doc}\n"


class ExpositionRenderer:
    """Renders one registry again and again; keeps the text of every label set it has seen."""

    def __init__(self) -> None:
        self._labels: dict[tuple[tuple[str, str], ...], str] = {}
        self._names: dict[str, str] = {}

    def _labelstr(self, labels: dict[str, str]) -> str:
        key = tuple(labels.items())
        text = self._labels.get(key)
        if text is None:
            inner = ",".join(f'{_label_name(k)}="{_label_value(v)}"' for k, v in sorted(labels.items()))
            text = self._labels[key] = f"{{{inner}}}" if inner else ""
        return text

    def _name(self, name: str) -> str:
        escaped = self._names.get(name)
        if escaped is None:
            escaped = self._names[name] = _metric_name(name)
        return escaped

    def _line(self, sample) -> str:
        labels = self._labelstr(sample.labels) if sample.labels else ""
        stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
        return f"{self._name(sample.name)}{labels} {floatToGoString(sample.value)}{stamp}\n"

    def render(self, registry: Collector) -> bytes:
        out: list[str] = []
        for metric in registry.collect():
            suffix, mtype = _TYPES.get(metric.type, ("", metric.type))
            mname = self._name(metric.name + suffix)
            out.append(_help(mname, metric.documentation))
            out.append(f"# TYPE {mname} {mtype}\n")
            extra: dict[str, list[str]] = {}
            special = {metric.name + s: s for s in _OPENMETRICS_ONLY}
            for sample in metric.samples:
                moved = special.get(sample.name)
                if moved is None:
                    out.append(self._line(sample))
                else:
                    extra.setdefault(moved, []).append(self._line(sample))
            for moved, lines in sorted(extra.items()):
                name = self._name(metric.name + moved)
                out.append(_help(name, metric.documentation))
                out.append(f"# TYPE {name} gauge\n")
                out.extend(lines)
        return "".join(out).encode("utf-8")
