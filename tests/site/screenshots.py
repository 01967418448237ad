"""Screenshot the built course site (headless Chromium): ``DOCS_DIR/site-NN.png`` per notebook page, plus the home.

Usage: ``python tests/site/screenshots.py DOCS_DIR`` (``make screenshots`` runs it, then the JupyterLab shots of
the reference notebooks with ``tests/notebooks/screenshots.py``). The site is built offline from a throw-away
copy of ``antora/`` (see ``sitebuild.course_checkout``), so it works from a worktree too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sitebuild import ANTORA, course_checkout, run_antora

COMPONENT = "llmd-course"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def shoot(docs: Path, *, width: int = 1280, height: int = 1700) -> list[Path]:
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
        pages = [("home", root / "site" / COMPONENT / "index.html")]
        pages += [(p.stem[:2], p) for p in sorted((root / "site" / COMPONENT).glob("[0-9][0-9]-*.html"))]
        for name, page in pages:
            out = docs / f"site-{name}.png"
            subprocess.run([chromium, *FLAGS, f"--user-data-dir={root / 'chrome'}", f"--window-size={width},{height}",
                            f"--screenshot={out}", page.as_uri()], check=True, capture_output=True, timeout=120)
            made.append(out)
    return made


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for path in shoot(Path(sys.argv[1])):
        print(path, path.stat().st_size, "bytes")
