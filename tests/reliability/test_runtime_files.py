"""Issue 17 §4 and the honest ``down``: the lab home is 0700 and every state, log and key file in it 0600
(``state.db`` holds Secrets and KServe's TLS keys), and ``down`` says so when it had to kill the lab."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from labhelpers import run_cli

from llmd_lab.lab import process, server
from llmd_lab.lab.context import LabContext
from llmd_lab.lab.home import LabPaths, secure_home


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secure_home_narrows_what_an_older_lab_left_world_readable(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    (home / "pki").mkdir(parents=True)
    os.chmod(home, 0o755)
    for name in ("state.db", "state.db-wal", "state.db-shm", "lab.log", "pki/ca.key"):
        (home / name).write_text("x")
        os.chmod(home / name, 0o644)
    secure_home(LabPaths(home))
    assert _mode(home) == 0o700 and _mode(home / "pki") == 0o700
    for name in ("state.db", "state.db-wal", "state.db-shm", "lab.log", "pki/ca.key"):
        assert _mode(home / name) == 0o600, name


def test_a_running_lab_keeps_its_state_log_and_keys_private(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    modes: dict[str, int] = {}

    async def scenario() -> None:
        stop = asyncio.Event()

        async def ready(info: dict) -> None:
            await asyncio.sleep(0)
            for path in [home, *home.iterdir(), *(home / "pki").iterdir()]:
                modes[str(path.relative_to(tmp_path))] = _mode(path)
            stop.set()

        def no_components(ctx: LabContext) -> list:
            return []

        await server.run_lab(home, 0, profile="fresh", stop=stop, ready=ready, components=no_components)

    old = os.umask(0o022)  # a usual umask: the lab must not rely on the caller's
    try:
        asyncio.run(scenario())
    finally:
        os.umask(old)
    assert modes["lab"] == 0o700
    assert {"lab/state.db", "lab/state.db-wal", "lab/state.db-shm", "lab/lab.log", "lab/token", "lab/kubeconfig"} <= set(modes)
    assert any(name.startswith("lab/pki/") and name.endswith(".key") for name in modes), modes
    wide = {name: oct(mode) for name, mode in modes.items() if name != "lab" and mode & 0o077}
    assert not wide, wide


def test_down_says_when_it_had_to_kill_the_lab(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    home.mkdir()
    # a "lab" that ignores SIGTERM, as a wedged event loop would
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                                 "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
                                 "time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert stubborn.stdout.readline().strip() == "ready"
        (home / "lab.json").write_text(json.dumps({"pid": stubborn.pid, "port": 1, "url": "https://127.0.0.1:1"}))
        result = run_cli(home, "down", "--timeout", "0.5")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "killed" in result.stderr and "SIGKILL" in result.stderr and "stopped" not in result.stdout
        assert stubborn.wait(timeout=10) == -signal.SIGKILL
        assert process.running(home) is None
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
            stubborn.wait()
        stubborn.stdout.close()
