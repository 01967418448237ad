"""The course site: it builds offline without warnings, covers every notebook, and has no broken links."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from sitebuild import ANTORA, REPO, SiteBuild

from llmd_lab.course import site as course_site

# The notebook arc of issue 7; the site must have one page per notebook, named after its file.
NOTEBOOK_SLUGS = [
    "00-connect-and-orient",
    "01-preflight",
    "02-deploy-replicas",
    "03-cache-hitting-prompts",
    "04-live-metrics",
    "05-benchmark-routing",
    "06-tensor-parallelism",
    "07-pd-disaggregation",
    "08-troubleshooting",
    "09-tune-the-scheduler",
    "10-cleanup",
]
REFERENCE = course_site.Layout().reference  # the executed notebooks the pages' charts come from
SETUP_PAGES = ["local-lab", "preflight", "operators", "gpu-nodes", "networking", "disconnected", "monitoring"]
COMPONENT = "llmd-course"
WARN_LEVELS = {"warn", "error", "fatal"}


class PageParser(HTMLParser):
    """Collects what a link checker needs from one HTML page: ids, links, image sources, classes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.sources: list[str] = []
        self.classes: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.ids.add(values["name"])
        if tag in ("a", "link") and "href" in values:
            self.links.append(values["href"])
        if tag in ("img", "script") and "src" in values:
            self.sources.append(values["src"])
        self.classes.extend(values.get("class", "").split())

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_site_builds_without_warnings(built_site: SiteBuild) -> None:
    problems = [record for record in built_site.log if record.get("level") in WARN_LEVELS]
    assert not problems, "Antora reported:\n" + "\n".join(json.dumps(p) for p in problems)
    assert built_site.returncode == 0, built_site.stderr
    assert (built_site.site_dir / "index.html").is_file()


def test_every_notebook_has_a_page(built_site: SiteBuild) -> None:
    """One page per notebook of the arc, and for any notebook file that exists in notebooks/."""
    slugs = set(NOTEBOOK_SLUGS)
    notebooks_dir = REPO / "notebooks"
    if notebooks_dir.is_dir():
        slugs |= {p.stem for p in notebooks_dir.iterdir() if re.match(r"^\d\d-.+\.ipynb$", p.name)}
    missing = [s for s in sorted(slugs) if not (built_site.site_dir / COMPONENT / f"{s}.html").is_file()]
    assert not missing, f"no course page for notebooks {missing}: add antora/modules/ROOT/pages/<slug>.adoc"


def test_no_page_for_a_notebook_that_is_not_in_the_arc() -> None:
    pages = {p.stem for p in (ANTORA / "modules" / "ROOT" / "pages").glob("[0-9][0-9]-*.adoc")}
    assert pages == set(NOTEBOOK_SLUGS)


def test_navigation_lists_every_notebook_and_setup_page(built_site: SiteBuild) -> None:
    home = parse(built_site.site_dir / COMPONENT / "index.html")
    nav_targets = {Path(urlsplit(href).path).name for href in home.links}
    for slug in NOTEBOOK_SLUGS:
        assert f"{slug}.html" in nav_targets, f"{slug} is not in nav.adoc"
    for page in SETUP_PAGES:
        assert f"{page}.html" in nav_targets, f"setup/{page} is not in nav.adoc"


def test_no_broken_internal_links_or_images(built_site: SiteBuild) -> None:
    site = built_site.site_dir
    pages = html_pages(site)
    assert len(pages) >= len(NOTEBOOK_SLUGS) + len(SETUP_PAGES)
    parsed = {page: parse(page) for page in pages}
    broken = []
    for page, parser in parsed.items():
        if "unresolved" in parser.classes:
            broken.append(f"{page.relative_to(site)}: unresolved xref")
        for ref in parser.links + parser.sources:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc or ref.startswith("mailto:"):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or site.resolve() not in target.resolve().parents:
                broken.append(f"{page.relative_to(site)}: {ref} -> missing file")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse(target).ids
                if parts.fragment not in ids:
                    broken.append(f"{page.relative_to(site)}: {ref} -> no id #{parts.fragment}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("slug", NOTEBOOK_SLUGS)
def test_notebook_page_has_lesson_chart_and_instructor_notes(built_site: SiteBuild, slug: str) -> None:
    page = parse(built_site.site_dir / COMPONENT / f"{slug}.html")
    for section in ("goal", "the-lesson", "what-the-notebook-does", "the-chart", "did-it-work", "instructor-notes"):
        assert section in page.ids, f"{slug}: missing section #{section}"
    for section in ("timing", "what-to-say", "what-usually-goes-wrong"):
        assert any(i == section or i.startswith(f"{section}-") for i in page.ids), f"{slug}: no {section}"
    text = " ".join(page.text)
    assert f"notebooks/{slug}.ipynb" in text
    charts = [src for src in page.sources if "_images/" in src]
    extra = [f"_images/{slug[:2]}-chart-{k}.svg" for k in range(1, len(course_site.site_charts(REFERENCE / f"{slug}.ipynb")) + 1)]
    assert charts == [f"_images/{slug[:2]}-key-chart.svg", *extra], f"{slug}: expected its key chart, found {charts}"
    assert f"_attachments/reference/{slug}.ipynb" in page.links, f"{slug}: no link to the executed reference run"


def test_the_site_has_no_placeholder(built_site: SiteBuild) -> None:
    hits = [str(p.relative_to(built_site.site_dir)) for p in built_site.site_dir.rglob("*")
            if p.suffix in (".html", ".svg") and re.search(r"placeholder|TODO|TBD", p.read_text(encoding="utf-8"))]
    assert not hits, f"placeholders in the built site: {hits}"


@pytest.mark.parametrize("slug", NOTEBOOK_SLUGS)
def test_key_charts_are_real_charts_with_titled_axes(built_site: SiteBuild, slug: str) -> None:
    svg = (built_site.site_dir / COMPONENT / "_images" / f"{slug[:2]}-key-chart.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<svg") and svg.count("<text") >= 3, f"{slug}: not a rendered chart"
    assert "role-axis-title" in svg, f"{slug}: a chart without axis titles"


@pytest.mark.parametrize("slug", NOTEBOOK_SLUGS)
def test_reference_notebooks_are_published_executed_and_passing(built_site: SiteBuild, slug: str) -> None:
    nb = json.loads((built_site.site_dir / COMPONENT / "_attachments" / "reference" / f"{slug}.ipynb").read_text())
    outputs = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert f"✅ {slug[:2]} passed" in outputs, f"{slug}: the published reference run did not pass"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_page_renders_in_headless_chromium(built_site: SiteBuild, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")  # the screenshots need it too
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,900",
            f"--screenshot={shot}",
            (built_site.site_dir / COMPONENT / "05-benchmark-routing.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    data = shot.read_bytes()
    assert _png_size(data) == (1280, 900)
    # A blank page compresses to a few kilobytes; a rendered course page with nav and text does not.
    assert len(data) > 40_000
