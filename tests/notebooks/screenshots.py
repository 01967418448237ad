"""Screenshot executed notebooks as JupyterLab renders them (headless Chromium), for docs/notebook-NN.png.

Usage: ``python tests/notebooks/screenshots.py DOCS_DIR EXECUTED.ipynb...`` — each ``NN-slug*.ipynb`` becomes
``DOCS_DIR/notebook-NN.png``. JupyterLab starts on 127.0.0.1 with a random token that is never printed, in a
temporary root holding copies of the notebooks, with windowed rendering off so a tall window shows every cell.
Needs ``chromium`` (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(root: Path) -> Path:
    """User settings: render all cells (no windowing) so one tall screenshot holds the whole notebook."""
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    return root / "settings"


def _wait_http(url: str, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > end:
                raise TimeoutError(f"JupyterLab did not answer within {deadline_s:.0f}s") from None
            time.sleep(0.5)


def shoot(docs: Path, notebooks: list[Path], *, width: int = 1500, height: int = 7000) -> list[Path]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    docs.mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        work = root / "notebooks"
        work.mkdir()
        for nb in notebooks:
            shutil.copy(nb, work / nb.name)
        if (Path(__file__).resolve().parents[2] / "notebooks" / "images").is_dir():
            shutil.copytree(Path(__file__).resolve().parents[2] / "notebooks" / "images", work / "images")
        token, port = secrets.token_hex(24), _free_port()
        env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(_settings(root)), "JUPYTER_TOKEN": token,
               "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces")}  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--ServerApp.root_dir={work}", "--ServerApp.log_level=WARN"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", 60)
            for nb in notebooks:
                out = docs / f"notebook-{nb.name[:2]}.png"
                url = f"http://127.0.0.1:{port}/lab/tree/{nb.name}?reset&token={token}"
                subprocess.run(
                    [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={root / 'chrome'}", f"--window-size={width},{height}",
                     "--virtual-time-budget=30000", f"--screenshot={out}", url],
                    check=True, capture_output=True, timeout=180,
                )  # fmt: skip
                made.append(out)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return made


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    for path in shoot(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]):
        print(path, path.stat().st_size, "bytes")
