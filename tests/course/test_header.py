"""The course header: every notebook has one, it parses, and bad headers fail with the fix."""

from __future__ import annotations

import pytest

from llmd_lab.course import header

GOOD = """# 04 · Live metrics

**Goal:** read the numbers.

**Time:** 15 minutes (plus a download) · **Needs:** the service
from notebook 02.

**What this notebook does:**

1. Takes a reading.
2. Starts the panel
   and traffic.

**Instructor talking points:**

* Counters need two readings.
* Gauges need one.

**Chart:** The panel's final state.

Free prose for the attendee."""


def test_every_notebook_has_a_parseable_header():
    found = header.read_all()
    assert [h.slug for h in found] == header.slugs() and len(found) == 11
    for h in found:
        assert h.goal and h.needs and h.steps and h.talking_points and h.chart, h.slug
        assert 5 <= h.minutes <= 60, h.slug


def test_headers_render_the_same_in_jupyterlab_and_on_the_site():
    """JupyterLab renders $…$ as LaTeX (prices turned into maths once); the site does not: no dollars."""
    for slug in header.slugs():
        assert "$" not in header.first_markdown_cell(header.NOTEBOOK_DIR / f"{slug}.py"), f"{slug}: write USD"


def test_the_py_and_the_ipynb_carry_the_same_header():
    for slug in header.slugs():
        py = header.first_markdown_cell(header.NOTEBOOK_DIR / f"{slug}.py")
        nb = header.first_markdown_cell(header.NOTEBOOK_DIR / f"{slug}.ipynb")
        assert header.parse(py, slug) == header.parse(nb, slug), f"{slug}: run jupytext --sync"


def test_parse_reads_every_field():
    h = header.parse(GOOD, "04-live-metrics")
    assert (h.number, h.title, h.minutes, h.time_note) == ("04", "Live metrics", 15, "plus a download")
    assert h.needs == "the service from notebook 02."
    assert h.steps == ("Takes a reading.", "Starts the panel and traffic.")
    assert h.talking_points == ("Counters need two readings.", "Gauges need one.")
    assert h.chart == "The panel's final state." and h.intro == "Free prose for the attendee."


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda t: t.replace("**Chart:** The panel's final state.\n", ""), "missing **Chart:**"),
    (lambda t: t.replace("# 04 ·", "# 05 ·"), "must start with '# 04 · Title'"),
    (lambda t: t.replace("15 minutes", "a quarter hour"), "**Time:** N minutes"),
    (lambda t: t.replace("1. Takes a reading.\n2. Starts the panel\n   and traffic.", "Takes a reading."),
     "expected a list"),
    (lambda t: t.replace("**Goal:** read the numbers.", "**Goal:** a.\n\n**Goal:** b."), "appears twice"),
])  # fmt: skip
def test_bad_headers_say_what_to_fix(mangle, message):
    with pytest.raises(header.HeaderError, match=message.replace("*", r"\*").replace("(", r"\(")):
        header.parse(mangle(GOOD), "04-live-metrics")
