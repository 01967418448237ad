"""docs/architecture.svg renders whole: valid SVG, every label inside the picture, the parts the docs name."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("path", ["docs/architecture.svg", "notebooks/images/architecture.svg"])
def test_every_label_fits_inside_the_picture(path: str):
    root = ET.parse(REPO / path).getroot()
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    for text in root.iter(f"{SVG}text"):
        x, y = float(text.attrib["x"]), float(text.attrib["y"])
        size = float(text.attrib.get("font-size", root.attrib.get("font-size", 13)))
        span = 0.6 * size * len(text.text or "")  # a generous average glyph width for sans-serif
        anchor = text.attrib.get("text-anchor", "start")
        left = x - span / 2 if anchor == "middle" else x - span if anchor == "end" else x
        assert 0 <= left and left + span <= width and size <= y <= height, f"{path}: {text.text!r} is cut off"


def test_the_architecture_picture_names_both_worlds_and_is_linked():
    text = " ".join(t.text or "" for t in ET.parse(REPO / "docs/architecture.svg").getroot().iter(f"{SVG}text"))
    for part in ("OpenShift AI 3.0", "local lab", "API server", "Endpoint picker", "Simulated vLLM", "Gateway"):
        assert part in text
    assert "(architecture.svg)" in (REPO / "docs/architecture.md").read_text()
