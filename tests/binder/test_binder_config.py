"""binder/: the repo2docker files parse and match the project, and `binder/start` brings the lab up then execs.

The end-to-end start test installs the project as a wheel into a clean temporary venv (dependencies borrowed
from the test venv through a .pth line, so no download), runs `binder/start` with a harmless command instead of
Jupyter, and checks that the command saw a running lab.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
BINDER = REPO / "binder"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
NOTEBOOK_00 = "notebooks/00-connect-and-orient.ipynb"


def _requirements(path: Path) -> list[Requirement]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [Requirement(line) for line in lines if line]


def test_runtime_is_a_python_the_project_supports() -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-"), runtime
    version = runtime.removeprefix("python-")
    assert version in SpecifierSet(PYPROJECT["requires-python"]), (
        f"{runtime} vs {PYPROJECT['requires-python']}"
    )


def _lab_requirements() -> list[Requirement]:
    """What a Binder image needs: the library plus the `lab` extra (which pulls in `sim`), without self-references."""
    extras = PYPROJECT["optional-dependencies"]
    wanted = [*PYPROJECT["dependencies"], *extras["sim"], *extras["lab"]]
    return [r for r in map(Requirement, wanted) if canonicalize_name(r.name) != canonicalize_name(PYPROJECT["name"])]


def test_requirements_are_exactly_the_project_dependencies() -> None:
    """The cached dependency layer cannot drift from pyproject.toml (the library and its `lab` extra)."""
    binder = {canonicalize_name(r.name): r for r in _requirements(BINDER / "requirements.txt")}
    project = {canonicalize_name(r.name): r for r in _lab_requirements()}
    hint = "copy [project].dependencies and the sim/lab extras of pyproject.toml into binder/requirements.txt"
    assert set(binder) == set(project), f"differ: {sorted(set(binder) ^ set(project))}; {hint}"
    for name, requirement in project.items():
        assert binder[name].specifier == requirement.specifier, f"{name}: {hint}"
        assert binder[name].extras == requirement.extras, name


def test_requirements_resolve_in_the_test_environment() -> None:
    """pip resolves binder/requirements.txt with no index, i.e. against the environment the suite runs in."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-index",
            "-q",
            "-r",
            str(BINDER / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_post_build_installs_the_project_and_opens_notebook_00() -> None:
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "postBuild must be executable"
    text = post_build.read_text()
    assert "pip install --no-cache-dir --no-deps -e ." in text
    assert PYPROJECT["name"] == "llmd_lab" and "llmd-lab" in PYPROJECT["scripts"]
    assert f'"default_url": "/lab/tree/{NOTEBOOK_00}"' in text
    proc = subprocess.run(["bash", "-n", str(post_build)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _fake_llmd_lab(bin_dir: Path, *, up_exit: int) -> Path:
    """A stand-in `llmd-lab` that records its arguments, so the start script's contract is testable alone."""
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "llmd-lab"
    fake.write_text(
        "#!/bin/bash\n"
        'echo "$*" >> "$FAKE_CALLS"\n'
        'if [ "$1" = up ]; then exit ' + str(up_exit) + "; fi\n"
        'if [ "$1" = kubeconfig ]; then echo "$LLMD_LAB_HOME/kubeconfig"; fi\n'
    )
    fake.chmod(0o755)
    return fake


@pytest.mark.parametrize("up_exit", [0, 1], ids=["lab-up", "lab-failed"])
def test_start_runs_llmd_lab_up_then_execs_the_command(tmp_path: Path, up_exit: int) -> None:
    _fake_llmd_lab(tmp_path / "bin", up_exit=up_exit)
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "FAKE_CALLS": str(tmp_path / "calls"),
        "LLMD_LAB_PROFILE": "course",
        "LLMD_LAB_TIME_SCALE": "20",
    }
    command = [
        sys.executable,
        "-c",
        "import json, os; print(json.dumps({'pid': os.getpid(), "
        "'kubeconfig': os.environ.get('KUBECONFIG'), 'home': os.environ.get('LLMD_LAB_HOME')})); raise SystemExit(7)",
    ]
    proc = subprocess.Popen(
        [str(BINDER / "start"), *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 7, err  # the command's own exit status: it replaced the script
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["pid"] == proc.pid, "start must exec the command, not run it as a child"
    assert seen["home"] == str(tmp_path / "home" / ".llmd-lab")
    assert seen["kubeconfig"] == str(tmp_path / "home" / ".llmd-lab" / "kubeconfig")
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0] == "up --time-scale 20 --profile course"
    assert calls[1] == "kubeconfig"
    assert ("did not start" in err) == bool(up_exit)


def _clean_venv_with_project(tmp_path: Path) -> Path:
    """A new venv holding the project as a built wheel; dependencies come from the test venv via a .pth line."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(
        REPO / "llmd_lab", src / "llmd_lab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), f"{src}/"],
        check=True,
        capture_output=True,
        timeout=240,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    wheel = next((tmp_path / "dist").glob("llmd_lab-*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    purelib = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "zz_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


@pytest.mark.slow
def test_start_brings_the_real_lab_up_in_a_clean_venv(tmp_path: Path) -> None:
    venv = _clean_venv_with_project(tmp_path)
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LLMD_LAB_HOME": str(tmp_path / "lab"),
        "LLMD_LAB_TIME_SCALE": "20",
    }
    probe = (
        "import json, os, llmd_lab\n"
        "from kubernetes import client, config\n"
        "config.load_kube_config()\n"
        "raw = client.CoreV1Api().list_node(_preload_content=False)\n"
        "nodes = [n['metadata']['name'] for n in json.loads(raw.data)['items']]\n"
        "print(json.dumps({'pid': os.getpid(), 'package': llmd_lab.__file__, 'nodes': nodes,\n"
        "                  'kubeconfig': os.environ['KUBECONFIG']}))\n"
    )
    try:
        proc = subprocess.Popen(
            [str(BINDER / "start"), str(venv / "bin" / "python"), "-c", probe],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        seen = json.loads(out.strip().splitlines()[-1])
        assert seen["pid"] == proc.pid
        assert seen["package"].startswith(str(venv)), (
            "the lab must run from the installed wheel, not the checkout"
        )
        assert seen["kubeconfig"] == str(tmp_path / "lab" / "kubeconfig")
        assert seen["nodes"], "the lab answered but has no nodes"
    finally:
        subprocess.run(
            [str(venv / "bin" / "llmd-lab"), "down"], env=env, cwd=tmp_path, capture_output=True, timeout=60
        )
