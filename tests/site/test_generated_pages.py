"""One source of truth: the notebook pages are generated from the notebooks, and drift fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmd_lab.course import header, site


def test_committed_pages_and_charts_match_the_notebooks():
    stale = site.drift(site.Layout())
    assert not stale, f"generated files differ from the notebooks: {stale}. Run `make site` and commit."


def _layout(tmp: Path) -> site.Layout:
    """A copy of every input and output of the generator, so a test can never write into the repository."""
    real = site.Layout()
    assert set(site.Layout.__dataclass_fields__) == {"notebooks", "prose", "pages", "images", "reference", "partials"}
    copies = {}
    for field in ("notebooks", "prose", "pages", "images", "reference", "partials"):
        src = getattr(real, field)
        copies[field] = tmp / field
        shutil.copytree(src, copies[field], ignore=shutil.ignore_patterns("images"))
    return site.Layout(**copies)


def test_a_header_edit_is_drift_until_regenerated(tmp_path: Path):
    layout = _layout(tmp_path)
    nb = layout.notebooks / "04-live-metrics.py"
    nb.write_text(nb.read_text().replace("**Time:** 15 minutes", "**Time:** 17 minutes", 1))
    assert site.drift(layout) == [str(layout.pages / "04-live-metrics.adoc"), str(layout.partials / "course-plan.adoc"),
                                  str(layout.partials / "agenda.adoc")]  # the page, the sizing table, the agenda
    site.write(layout)
    assert site.drift(layout) == []
    assert "Time:: 17 minutes" in (layout.pages / "04-live-metrics.adoc").read_text()


def test_a_page_edited_by_hand_is_drift(tmp_path: Path):
    layout = _layout(tmp_path)
    page = layout.pages / "08-troubleshooting.adoc"
    page.write_text(page.read_text().replace("== Goal", "== Goal\n\nA safety switch the notebook lacks."))
    assert site.drift(layout) == [str(page)]


def test_the_page_says_what_the_header_says():
    for h in header.read_all():
        text = (site.Layout().pages / f"{h.slug}.adoc").read_text()
        assert f"Time:: {h.minutes} minutes" in text
        does = text.split("== What the notebook does")[1].split("== The chart")[0]
        assert does.count("\n. ") == len(h.steps), f"{h.slug}: steps differ from the notebook's header"
        assert f"image::{h.number}-key-chart.svg[" in text


def test_missing_reference_run_or_key_chart_is_an_error_not_a_placeholder(tmp_path: Path):
    layout = _layout(tmp_path)
    (layout.reference / "02-deploy-replicas.ipynb").unlink()
    ref = layout.reference / "05-benchmark-routing.ipynb"
    nb = json.loads(ref.read_text())
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("tags", None)
    ref.write_text(json.dumps(nb))
    with pytest.raises(site.SiteError) as err:
        site.render(layout)
    assert "02-deploy-replicas.ipynb: no executed reference notebook; run `make reference`" in str(err.value)
    assert "05-benchmark-routing.ipynb: no cell tagged 'key-chart'" in str(err.value)


def test_a_tagged_site_chart_is_shown_captioned_by_the_heading_above_it(tmp_path: Path):
    layout = _layout(tmp_path)  # 03's reference run has no site chart of its own
    ref = layout.reference / "03-cache-hitting-prompts.ipynb"
    nb = json.loads(ref.read_text())
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><text>TTFT p50 (ms)</text></svg>'
    nb["cells"] += [{"cell_type": "markdown", "metadata": {}, "source": ["## A second look\n", "text"]},
                    {"cell_type": "code", "metadata": {"tags": ["site-chart"]}, "source": "chart", "execution_count": 1,
                     "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"image/svg+xml": svg}}]}]
    ref.write_text(json.dumps(nb))
    site.write(layout)
    page = (layout.pages / "03-cache-hitting-prompts.adoc").read_text()
    assert ".A second look\nimage::03-chart-1.svg[A second look]" in page
    assert (layout.images / "03-chart-1.svg").read_text() == svg + "\n"
    nb["cells"][-1]["outputs"] = []  # the tool was missing in the reference run: an error, not an empty figure
    ref.write_text(json.dumps(nb))
    with pytest.raises(site.SiteError, match=r"site-chart' cell \d+ has no SVG output"):
        site.render(layout)


def test_missing_prose_section_is_named(tmp_path: Path):
    layout = _layout(tmp_path)
    prose = layout.prose / "10-cleanup.adoc"
    prose.write_text(prose.read_text().replace("=== Timing", "=== When"))
    with pytest.raises(site.SiteError, match=r"10-cleanup.adoc: missing sections \['=== Timing'\]"):
        site.render(layout)


def test_published_reference_notebooks_hold_no_secret_shapes():
    from llmd_lab.instructor.capture import SECRET_SHAPES

    for nb in sorted(site.Layout().reference.glob("*.ipynb")):
        text = nb.read_text()
        found = [name for name, rx in SECRET_SHAPES.items() if rx.search(text)]
        assert not found, f"{nb.name}: looks like it holds {found}; never publish it"
