"""Screenshot executed notebooks as JupyterLab renders them (headless Chromium), for docs/notebook-NN.png.

Usage: ``python tests/notebooks/screenshots.py DOCS_DIR EXECUTED.ipynb...`` — each ``NN-slug*.ipynb`` becomes
``DOCS_DIR/notebook-NN.png``. JupyterLab starts on 127.0.0.1 with a random token that is never printed, in a
temporary root holding copies of the notebooks, with windowed rendering off so a tall window shows every cell.
Needs ``chromium`` (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import base64
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
    news = root / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
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


#: Per notebook, the heading to scroll to the top of the window: the part a reader would rather look at.
ANCHORS = {"02": "Talk to it", "03": "All patterns at a glance", "04": "The live panel", "05": "Run the benchmark",
           "07": "Score your prediction", "08": "How long each took to show", "09": "Measure"}


class _DevTools:
    """Just enough of the Chrome DevTools Protocol: navigate, evaluate JavaScript, capture the viewport."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client, a dependency of the kubernetes client

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, deadline_s: float) -> bool:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.js(expression):
                return True
            time.sleep(0.5)
        return False


def _fold_left_sidebar(tools: _DevTools) -> None:
    """Click the open left-sidebar tab (Lumino tabs react to real pointer events, not element.click())."""
    rect = tools.js("""(() => { const t = document.querySelector('.jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current');
        if (!t) return null; const r = t.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()""")
    if not rect:
        return
    for kind in ("mousePressed", "mouseReleased"):
        tools.call("Input.dispatchMouseEvent", type=kind, x=rect[0], y=rect[1], button="left", clickCount=1)


SCROLL_TO = """(() => {
  const heads = [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell h2')];
  const h = heads.find(e => e.textContent.includes(%s));
  if (!h) return false;
  h.closest('.jp-Cell').scrollIntoView({block: 'start'});
  return true;
})()"""


def shoot(docs: Path, notebooks: list[Path], *, width: int = 1500, height: int = 2300) -> list[Path]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    docs.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[2]
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        work = root / "notebooks"
        work.mkdir()
        for nb in notebooks:
            shutil.copy(nb, work / nb.name)
        shutil.copytree(repo / "notebooks" / "images", work / "images")
        token, port, cdp_port = secrets.token_hex(24), _free_port(), _free_port()
        env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(_settings(root)), "JUPYTER_TOKEN": token,
               "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"), "JUPYTER_DATA_DIR": str(root / "data")}  # fmt: skip
        # Outputs you produced yourself are trusted in JupyterLab (SVG charts render); a copied notebook is not.
        # Sign the copies in this throw-away notary so the screenshot shows what the person who ran it saw.
        subprocess.run([sys.executable, "-m", "jupyter", "trust", *(str(work / nb.name) for nb in notebooks)],
                       env=env, check=True, capture_output=True, timeout=60)  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--ServerApp.root_dir={work}", "--ServerApp.log_level=WARN",
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        browser = None
        try:
            _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", 90)
            browser = subprocess.Popen(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={root / 'chrome'}", f"--window-size={width},{height}",
                 "--remote-debugging-address=127.0.0.1", f"--remote-debugging-port={cdp_port}", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            _wait_http(f"http://127.0.0.1:{cdp_port}/json/version", 60)
            with urllib.request.urlopen(f"http://127.0.0.1:{cdp_port}/json/list", timeout=10) as resp:
                page = next(t for t in json.load(resp) if t["type"] == "page")
            tools = _DevTools(page["webSocketDebuggerUrl"])
            tools.call("Page.enable")
            for nb in notebooks:
                number = nb.name[:2]
                tools.call("Page.navigate", url=f"http://127.0.0.1:{port}/lab/tree/{nb.name}?reset&token={token}")
                tools.wait_for("document.querySelectorAll('.jp-Notebook .jp-Cell').length > 5", 90)
                tools.wait_for("document.querySelectorAll('.jp-OutputArea-output img, .jp-RenderedSVG svg')"
                               ".length > 0", 30)  # fmt: skip
                _fold_left_sidebar(tools)
                time.sleep(1)
                tools.js(SCROLL_TO % json.dumps(ANCHORS.get(number, "")))
                time.sleep(1.5)
                shot = tools.call("Page.captureScreenshot", format="png")
                out = docs / f"notebook-{number}.png"
                out.write_bytes(base64.b64decode(shot["data"]))
                made.append(out)
            tools.ws.close()
        finally:
            if browser is not None:
                browser.terminate()
                browser.wait(timeout=30)
            server.terminate()
            server.wait(timeout=30)
    return made


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    for path in shoot(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]):
        print(path, path.stat().st_size, "bytes")
