"""Screenshot the built course site (headless Chromium): ``DOCS_DIR/site-NN.png`` (top of each notebook page) and
``site-NN-chart.png`` (its chart section), plus the home and instructor pages.

Usage: ``python tests/site/site_screenshots.py DOCS_DIR`` (``make screenshots`` runs it, then the JupyterLab shots of
the reference notebooks with ``tests/notebooks/screenshots.py``, whose DevTools client this reuses to scroll).
The site is built offline from a throw-away copy of ``antora/`` (``sitebuild.course_checkout``), so it works from
a worktree too.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "notebooks")]  # tests/notebooks/screenshots.py
from screenshots import CHROMIUM_FLAGS, _DevTools, _free_port, _wait_http  # noqa: E402  (tests/notebooks)
from sitebuild import ANTORA, course_checkout, run_antora  # noqa: E402

COMPONENT = "llmd-course"
SCROLL = "(() => { const e = document.getElementById(%s); if (!e) return false; e.scrollIntoView(); return true; })()"


def _pages(site: Path) -> list[tuple[str, Path, str]]:
    """(name, page, element id to scroll to) for every screenshot."""
    pages = [("home", site / "index.html", ""), ("instructor", site / "instructor.html", "agenda-and-sizing")]
    for page in sorted(site.glob("[0-9][0-9]-*.html")):
        pages += [(page.stem[:2], page, ""), (f"{page.stem[:2]}-chart", page, "the-chart")]
    return pages


def shoot(docs: Path, *, width: int = 1280, height: int = 1500) -> list[Path]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    antora = ANTORA / "node_modules" / ".bin" / "antora"
    if not antora.exists():
        raise SystemExit("antora is not installed: make site (runs npm ci from the lockfile)")
    docs.mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build = run_antora(antora, course_checkout(root), root / "site")
        if build.returncode != 0:
            raise SystemExit(f"antora failed:\n{build.stderr}")
        port = _free_port()
        browser = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={root / 'chrome'}", f"--window-size={width},{height}",
             "--remote-debugging-address=127.0.0.1", f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_http(f"http://127.0.0.1:{port}/json/version", 60)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                target = next(t for t in json.load(resp) if t["type"] == "page")
            tools = _DevTools(target["webSocketDebuggerUrl"])
            tools.call("Page.enable")
            for name, page, anchor in _pages(root / "site" / COMPONENT):
                tools.call("Page.navigate", url=page.as_uri())
                tools.wait_for("document.readyState === 'complete' && [...document.images].every(i => i.complete)", 30)
                if anchor and not tools.js(SCROLL % json.dumps(anchor)):
                    raise SystemExit(f"{page.name}: no element #{anchor} to scroll to")
                time.sleep(0.3)  # one paint after the scroll
                out = docs / f"site-{name}.png"
                out.write_bytes(base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"]))
                made.append(out)
            tools.ws.close()
        finally:
            browser.terminate()
            browser.wait(timeout=30)
    return made


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for path in shoot(Path(sys.argv[1])):
        print(path, path.stat().st_size, "bytes")
