"""Parse a notebook's course header: its first markdown cell, written in a fixed shape so pages can be generated.

The shape (jupytext percent source shown; the ``.ipynb`` carries the same markdown)::

    # NN · Title
    **Goal:** one paragraph.
    **Time:** 15 minutes (optional note) · **Needs:** what must exist first.
    **What this notebook does:**
    1. a step
    **Instructor talking points:**
    * a point
    **Chart:** what the key chart shows (the site's alt text and caption).
    Free prose for the attendee follows.

Why a parser and not YAML front matter: attendees read this cell in JupyterLab, so it must be plain, readable
markdown; the parser only insists on the labels and their order, and says which one is missing or malformed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
SLUG_RX = re.compile(r"^(\d\d)-[a-z0-9-]+$")
LABELS = ("Goal", "Time", "What this notebook does", "Instructor talking points", "Chart")
_TITLE_RX = re.compile(r"^#\s+(\d\d)\s+·\s+(.+?)\s*$")
_TIME_RX = re.compile(r"^(\d+)\s+minutes?(?:\s+\((?P<note>[^)]*)\))?\s+·\s+\*\*Needs:\*\*\s+(?P<needs>.+)$", re.S)


class HeaderError(ValueError):
    """A notebook's first cell does not have the course header's shape; the message says what to fix."""


@dataclass(frozen=True)
class Header:
    """What the course knows about one notebook, read from its first cell."""

    slug: str
    number: str
    title: str
    goal: str
    minutes: int
    time_note: str
    needs: str
    steps: tuple[str, ...]
    talking_points: tuple[str, ...]
    chart: str
    intro: str = field(default="", repr=False)


def first_markdown_cell(path: Path) -> str:
    """The first markdown cell of an ``.ipynb`` or jupytext-percent ``.py`` notebook, as markdown text."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                src = cell["source"]
                return "".join(src) if isinstance(src, list) else src
        raise HeaderError(f"{path.name}: has no markdown cell; its first cell must be the course header")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("# %% [markdown]"):
        raise HeaderError(f"{path.name}: must start with a '# %% [markdown]' cell holding the course header")
    body: list[str] = []
    for line in lines[1:]:
        if line.startswith("# %%"):
            break
        body.append(line[2:] if line.startswith("# ") else line.removeprefix("#"))
    return "\n".join(body).strip("\n")


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _items(block: str, marker: str, where: str) -> tuple[str, ...]:
    """List items of a markdown list (continuation lines joined), or a HeaderError naming the section."""
    items: list[str] = []
    for line in block.splitlines():
        if re.match(marker, line):
            items.append(re.sub(marker, "", line, count=1).strip())
        elif items and line.strip():
            items[-1] += " " + line.strip()
    if not items:
        raise HeaderError(f"{where}: expected a list under this label")
    return tuple(items)


def _sections(paragraphs: list[str], where: str) -> tuple[dict[str, str], list[str]]:
    """Split paragraphs into the labelled sections (in LABELS order) and the free prose after them."""
    found: dict[str, list[str]] = {}
    current: str | None = None
    rest: list[str] = []
    for para in paragraphs:
        label = re.match(r"^\*\*([^*]+?):\*\*\s*", para)
        if label and label.group(1) in LABELS:
            current = label.group(1)
            if current in found:
                raise HeaderError(f"{where}: '**{current}:**' appears twice")
            found[current] = [para[label.end():]]
        elif current in ("What this notebook does", "Instructor talking points") and re.match(r"^(\d+\.|\*)\s", para):
            found[current].append(para)
        else:
            current = None
            rest.append(para) if found else None
    missing = [label for label in LABELS if label not in found]
    if missing:
        raise HeaderError(f"{where}: missing {', '.join(f'**{m}:**' for m in missing)} (see llmd_lab/course/header.py)")
    order = [label for label in found if label in LABELS]
    if order != list(LABELS):
        raise HeaderError(f"{where}: labels must come in this order: {', '.join(LABELS)}; found {', '.join(order)}")
    return {k: "\n\n".join(v).strip() for k, v in found.items()}, rest


def parse(markdown: str, slug: str) -> Header:
    """Read a course header; raises :class:`HeaderError` with the fix when a part is missing or malformed."""
    where = f"notebooks/{slug}: first cell"
    paragraphs = _paragraphs(markdown)
    title = _TITLE_RX.match(paragraphs[0]) if paragraphs else None
    if not title or f"{title.group(1)}-" != slug[:3]:
        raise HeaderError(f"{where}: must start with '# {slug[:2]} · Title'")
    sections, rest = _sections(paragraphs[1:], where)
    time = _TIME_RX.match(sections["Time"])
    if not time:
        raise HeaderError(f"{where}: write '**Time:** N minutes (optional note) · **Needs:** …'")
    return Header(
        slug=slug,
        number=title.group(1),
        title=title.group(2),
        goal=" ".join(sections["Goal"].split()),
        minutes=int(time.group(1)),
        time_note=(time.group("note") or "").strip(),
        needs=" ".join(time.group("needs").split()),
        steps=_items(sections["What this notebook does"], r"^\d+\.\s+", f"{where} **What this notebook does:**"),
        talking_points=_items(sections["Instructor talking points"], r"^\*\s+", f"{where} **Instructor talking points:**"),
        chart=" ".join(sections["Chart"].split()),
        intro="\n\n".join(rest),
    )


def slugs(notebook_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """The workshop's notebooks in order: every ``NN-slug.py`` in ``notebooks/``."""
    return sorted(p.stem for p in notebook_dir.glob("[0-9][0-9]-*.py") if SLUG_RX.match(p.stem))


def read(slug: str, notebook_dir: Path = NOTEBOOK_DIR) -> Header:
    """The header of ``notebooks/<slug>.py`` (the jupytext source every change goes through)."""
    return parse(first_markdown_cell(notebook_dir / f"{slug}.py"), slug)


def read_all(notebook_dir: Path = NOTEBOOK_DIR) -> list[Header]:
    return [read(slug, notebook_dir) for slug in slugs(notebook_dir)]
