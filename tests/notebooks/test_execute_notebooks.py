"""The workshop, executed as an attendee (user1, not admin) against a fresh lab, each notebook's own check passing.

How the required runs fit the budget on two cores:

1. papermill runs each notebook once with CI parameters (``fast=True``) as ``user1`` — the first run. Runs are
   made on demand and remembered (``first_runs``), so no test depends on another having run first: select one
   notebook with ``-k 05-benchmark`` and only what it needs executes;
2. nbval (``--nbval-lax``, in a pytest subprocess) re-executes *those executed notebooks* — they carry the
   injected CI parameters — on the same lab. That second execution is both the nbval run (any cell error
   fails) and the idempotence run (the whole sequence again on a lab that already holds its objects);
3. the whole suite runs twice more as attendee user2 with non-default parameters (another project, which the
   instructor made Kueue-managed; another model; replicas=3; another service name): papermill, then nbval over
   those executed notebooks; nothing may be left in that project after either pass;
4. notebook 01 runs once more as the instructor (admin): the full preflight, no "ask your instructor" rows.

Every executed notebook's outputs are scanned for anything that looks like a token or a kubeconfig.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbrun import (
    CUSTOM_QUEUE,
    EXPORTS,
    NOTEBOOK_DIR,
    SLUGS,
    TIMINGS,
    FirstRuns,
    NotebookLab,
    ci_parameters,
    custom_parameters,
    execute,
    find_secrets,
    output_text,
)  # fmt: skip

from llmd_lab.course import site

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


@pytest.mark.parametrize("slug", SLUGS)
def test_first_run_as_an_attendee(first_runs: FirstRuns, slug: str) -> None:
    run = first_runs.get(slug)
    nb = json.loads(run.path.read_text())
    last = next(c for c in reversed(nb["cells"]) if c["cell_type"] == "code")
    text = "".join("".join(o.get("text", "")) for o in last.get("outputs", []))
    assert f"✅ {slug[:2]} passed" in text, f"{slug}: its check did not report success:\n{text}"
    draws = any(c["cell_type"] == "code" and ("viz." in "".join(c["source"]) or "alt.Chart" in "".join(c["source"]))
                for c in nb["cells"])  # fmt: skip
    if draws:  # a chart the reader can look at, rendered offline (svg renderer), not a "<Chart ...>" repr
        assert '"image/svg+xml"' in output_text(run.path), f"{slug}: draws charts but no SVG output was saved"
    site.key_chart(run.path)  # the course page's chart: the cell tagged key-chart drew an SVG with text
    publish = os.environ.get("LLMD_LAB_REFERENCE_DIR")  # `make reference`: the course site publishes these runs
    if publish:
        Path(publish).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.path, Path(publish) / run.path.name)


def test_attendee_preflight_asks_instead_of_failing(first_runs: FirstRuns) -> None:
    text = output_text(first_runs.get("01-preflight").path)
    assert "as an attendee" in text and "ask your instructor" in text, "01 did not run with the attendee's view"


def test_instructor_preflight_runs_every_check(notebook_lab: NotebookLab) -> None:
    run = execute("01-preflight", notebook_lab.out, ci_parameters("01-preflight"), tag="-instructor",
                  env=notebook_lab.instructor_env)  # fmt: skip
    TIMINGS["01-preflight (instructor)"] = run.seconds
    text = output_text(run.path)
    assert "✅ 01 passed" in text and "as the instructor" in text and "0 to ask your instructor" in text


def test_two_attendees_at_once_do_not_disturb_each_other(notebook_lab: NotebookLab) -> None:
    """user2 runs notebook 02 in its own kernel while user1 runs it too: both pass, each in its own project (the
    namespace comes from each one's kubeconfig; nothing is shared but the lab)."""
    out = notebook_lab.out / "user2"
    out.mkdir(exist_ok=True)
    cwd = out / "cwd"
    cwd.mkdir(exist_ok=True)
    params = json.dumps(ci_parameters("02-deploy-replicas"))
    code = ("import json, sys, papermill; papermill.execute_notebook(sys.argv[1], sys.argv[2], "
            "parameters=json.loads(sys.argv[3]), cwd=sys.argv[4], kernel_name='python3', progress_bar=False, "
            "execution_timeout=240)")  # fmt: skip
    other = subprocess.Popen([sys.executable, "-c", code, str(NOTEBOOK_DIR / "02-deploy-replicas.ipynb"),
                              str(out / "02-deploy-replicas.ipynb"), params, str(cwd)],
                             env=notebook_lab.other_attendee_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)  # fmt: skip
    try:
        mine = execute("02-deploy-replicas", notebook_lab.out, ci_parameters("02-deploy-replicas"), tag="-concurrent")
    finally:
        log, _ = other.communicate(timeout=400)
        _free_gpus(notebook_lab.other_attendee_env, "user2")  # user2 gives its GPUs back, as notebook 10 would
    assert other.returncode == 0, f"user2's run of 02 failed:\n{log[-3000:]}"
    assert "✅ 02 passed" in output_text(mine.path) and "/user1/" in output_text(mine.path)
    theirs = output_text(out / "02-deploy-replicas.ipynb")
    assert "✅ 02 passed" in theirs and "/user2/" in theirs, "user2's service did not live in user2's project"


@pytest.mark.parametrize("slug", sorted(EXPORTS))
def test_exported_charts_for_the_course_site(notebook_lab: NotebookLab, first_runs: FirstRuns, slug: str) -> None:
    first_runs.get(slug)
    stem = EXPORTS[slug]
    png = (notebook_lab.exported / f"{stem}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, "not a real PNG chart"
    svg = (notebook_lab.exported / f"{stem}.svg").read_text()
    assert svg.lstrip().startswith("<svg") and "<text" in svg, "SVG without text: chart did not render"


def test_05_exports_the_guidellm_chart_for_the_course_site(notebook_lab: NotebookLab, first_runs: FirstRuns) -> None:
    """05's GuideLLM cell ran the real tool in the attendee's kernel, offline, and its chart is what the site shows."""
    if importlib.util.find_spec("guidellm") is None:  # find_spec: importing guidellm installs uvloop's loop policy
        pytest.skip("the bench extra installs GuideLLM")
    first_runs.get("05-benchmark-routing")
    svg = (notebook_lab.exported / "05-guidellm-ttft.svg").read_text()
    assert svg.lstrip().startswith("<svg") and "<text" in svg, "GuideLLM's chart did not render"


def _free_gpus(env: dict[str, str], namespace: str) -> None:
    """Delete every LLMInferenceService in the attendee's project (the kubeconfig's namespace) and wait."""
    proc = subprocess.run(["kubectl", "delete", "llminferenceservices", "--all", "-n", namespace, "--wait=true",
                           "--timeout=300s"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=330, check=False)  # fmt: skip
    assert proc.returncode == 0, f"could not free the project's GPUs: {proc.stderr[-1000:]}"


def _nbval(executed: list[Path], env: dict[str, str], out: Path, label: str) -> subprocess.CompletedProcess[str]:
    """nbval (``--nbval-lax``, in a pytest subprocess) re-executes ``executed`` in order with ``env``'s identity;
    records the whole run's and each notebook's cell time under ``label``."""
    ini = out / "pytest.ini"
    ini.write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-c", str(ini), "--rootdir", str(out),
         "--durations=0", "-p", "no:randomly", *map(str, executed)],
        cwd=out, env={**os.environ, **env}, capture_output=True, text=True, timeout=2300, check=False,
    )  # fmt: skip
    TIMINGS[f"{label}, whole subprocess (kernels included)"] = time.monotonic() - start
    cell_times: dict[str, float] = {}
    for line in proc.stdout.splitlines():  # "1.23s call  00-connect-and-orient.ipynb::Cell 3"
        parts = line.split()
        item = next((p for p in parts if "::" in p), None)
        if item and parts[0].endswith("s") and parts[0][:-1].replace(".", "", 1).isdigit():
            slug = item.split("::")[0].rsplit("/", 1)[-1].removesuffix(".ipynb").removesuffix("-custom")
            cell_times[slug] = cell_times.get(slug, 0.0) + float(parts[0][:-1])
    for slug in SLUGS:
        if slug in cell_times:
            TIMINGS[f"  {slug} ({label}, cells only)"] = cell_times[slug]
    return proc


@pytest.mark.timeout(2400)  # a failure deadline for eleven notebooks on a busy 2-core machine, not a budget
def test_second_run_under_nbval_is_idempotent(notebook_lab: NotebookLab, first_runs: FirstRuns) -> None:
    executed = [first_runs.get(s).path for s in SLUGS]  # the whole sequence, in course order
    proc = _nbval(executed, notebook_lab.env, notebook_lab.out, "nbval second run")
    assert proc.returncode == 0, f"nbval second run failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"


def _left_in(env: dict[str, str], namespace: str) -> list[str]:
    """Pods and LLMInferenceServices still in ``namespace`` (terminating pods count: their GPUs are not free)."""
    proc = subprocess.run(["kubectl", "get", "pods,llminferenceservices", "-n", namespace, "-o", "name"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, f"cannot list what is left in {namespace}: {proc.stderr[-1000:]}"
    return proc.stdout.split()


@pytest.mark.timeout(3000)  # a failure deadline for two passes of eleven notebooks on a busy machine, not a budget
def test_whole_suite_twice_with_custom_parameters_in_a_kueue_managed_project(
    notebook_lab: NotebookLab, custom_project: str
) -> None:
    """Issue 13's first "done means", literally: every notebook as an attendee (user2) with non-default parameters —
    another project (one user2 requested, Kueue-managed by the instructor, so every service needs the queue label
    the notebooks take from the settings 00 saved), another model that fits one L4, 3 replicas, another service
    name — twice in a row (papermill, then nbval re-running those executed notebooks), leaving no pods behind."""
    _free_gpus(notebook_lab.env, "user1")  # user1's runs give their GPUs back first: no dependence on what ran before
    out = notebook_lab.out / "custom"
    out.mkdir(exist_ok=True)
    env = notebook_lab.other_attendee_env
    executed = []
    for slug in SLUGS:
        run = execute(slug, out, custom_parameters(slug), tag="-custom", env=env)
        TIMINGS[f"{slug} (custom, papermill)"] = run.seconds
        text = output_text(run.path)
        assert f"✅ {slug[:2]} passed" in text, f"{slug} with custom parameters did not report success"
        said = f"{custom_project} is Kueue-managed (kueue.openshift.io/managed=true): your services get the label " \
               f"kueue.x-k8s.io/queue-name={CUSTOM_QUEUE}"  # fmt: skip
        assert said in text, f"{slug} did not work in {custom_project} with the queue 00 saved (or did not say so)"
        executed.append(run.path)
    text = output_text(out / "02-deploy-replicas-custom.ipynb")
    assert "Qwen3-8B" in text and "kueue.x-k8s.io/queue-name" in text, "02 did not show the custom model/queue label"
    assert not _left_in(env, custom_project), f"the first pass left {_left_in(env, custom_project)}"
    proc = _nbval(executed, env, out, "custom nbval run")
    assert proc.returncode == 0, f"custom nbval run failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    assert not _left_in(env, custom_project), f"the second pass left {_left_in(env, custom_project)}"


def test_outputs_hold_no_secrets(notebook_lab: NotebookLab, first_runs: FirstRuns) -> None:
    for slug in SLUGS:
        first_runs.get(slug)
    executed = sorted(notebook_lab.out.glob("*.ipynb"))
    assert notebook_lab.secrets(), "the lab wrote no token file to compare against"
    leaks = {p.name: found for p in executed if (found := find_secrets(output_text(p), notebook_lab.secrets()))}
    assert not leaks, f"outputs look like they hold secrets: {leaks}"
