"""Every chart the course publishes has human axis titles with units, and rates in one unit: %.

Reads the charts as a reader sees them: the SVG outputs of the executed reference notebooks (``make reference``)
and the key-chart images of the site. Vega writes each axis title as a ``role-axis-title`` text mark.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmd_lab.course import site

LAYOUT = site.Layout()
AXIS_TITLE = re.compile(r'class="mark-text role-axis-title"[^>]*>(?:<[^>]*>)*?<text[^>]*>([^<]*)</text>')
#: Axis titles naming a rate or a share of something: drawn in % everywhere (Grafana's ``percentunit``).
RATE_WORDS = ("hit rate", "cache use", "utilization", "utilisation")


def _svgs_of(notebook: Path) -> list[str]:
    out = []
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            svg = output.get("data", {}).get("image/svg+xml")
            if svg:
                out.append("".join(svg) if isinstance(svg, list) else svg)
    return out


def _charts() -> list[tuple[str, str]]:
    charts = [(f"{nb.name} output {i}", svg) for nb in sorted(LAYOUT.reference.glob("*.ipynb"))
              for i, svg in enumerate(_svgs_of(nb))]  # fmt: skip
    charts += [(image.name, image.read_text()) for image in sorted(LAYOUT.images.glob("*.svg"))]
    return charts


def problems(name: str, svg: str) -> list[str]:
    """What a reader would find wrong with one chart's axis titles."""
    out = []
    for title in AXIS_TITLE.findall(svg):
        if "_" in title:
            out.append(f"{name}: axis title {title!r} is a column name, not a human title")
        if any(word in title.lower() for word in RATE_WORDS) and "(%)" not in title:
            out.append(f"{name}: axis title {title!r} is a rate without its unit (%)")
    return out


def test_the_check_catches_a_fraction_axis_and_a_column_name():
    svg = ('<g class="mark-text role-axis-title"><text>hit rate</text></g>'
           '<g class="mark-text role-axis-title"><text>ttft_p95_s</text></g>')  # fmt: skip
    assert len(problems("x", svg)) == 2
    assert problems("x", '<g class="mark-text role-axis-title"><text>hit rate (%)</text></g>') == []


def test_every_published_chart_has_human_axis_titles_and_rates_in_percent():
    charts = _charts()
    if not charts:
        pytest.fail(f"no charts under {LAYOUT.reference} or {LAYOUT.images}: run `make reference` and `make site`")
    assert sum(len(AXIS_TITLE.findall(svg)) for _, svg in charts) > len(charts)  # the pattern still reads Vega's SVG
    found = [p for name, svg in charts for p in problems(name, svg)]
    assert not found, "\n".join(found)
