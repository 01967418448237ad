"""The notebooks as files: paired, stripped, parameterised, structured like the course promises.

These run without a lab (milliseconds): they guard the shape every notebook must keep while people edit them
in JupyterLab.
"""

from __future__ import annotations

import ast
import json
import re

import jupytext
import pytest
from nbrun import NOTEBOOK_DIR, REQUIRED_PARAMETERS, ROOT, SLUGS, find_secrets, notebook

pytestmark = pytest.mark.parametrize("slug", SLUGS)


def _cells(slug: str) -> list:
    return jupytext.read(notebook(slug))["cells"]


def test_the_sequence_matches_the_course_site(slug: str) -> None:
    assert notebook(slug).exists(), f"missing {notebook(slug)}"
    assert (ROOT / "antora/modules/ROOT/pages" / f"{slug}.adoc").exists(), f"no course page for {slug}"


def test_pair_is_in_sync_and_outputs_are_stripped(slug: str) -> None:
    ipynb = jupytext.read(notebook(slug))
    py = jupytext.read(NOTEBOOK_DIR / f"{slug}.py")
    left = [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in ipynb.cells]
    right = [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in py.cells]
    assert left == right, f"{slug}.ipynb and {slug}.py differ: run `jupytext --sync notebooks/{slug}.py`"
    raw = json.loads(notebook(slug).read_text())
    dirty = [i for i, c in enumerate(raw["cells"]) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{slug}.ipynb has outputs in cells {dirty}: clear them (Edit → Clear Outputs of All Cells)"
    assert raw["metadata"]["kernelspec"]["name"] == "python3"


def test_opens_with_goal_time_and_needs(slug: str) -> None:
    first = _cells(slug)[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith(f"# {slug[:2]} ·"), "title must start with the notebook number"
    for word in ("**Goal:**", "**Time:**", "**Needs:**"):
        assert word in first.source, f"{slug}: the opening cell must say {word}"


def test_has_a_papermill_parameters_cell_of_plain_assignments(slug: str) -> None:
    tagged = [c for c in _cells(slug) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{slug}: exactly one cell tagged 'parameters'"
    tree = ast.parse(tagged[0].source)
    names = set()
    for node in tree.body:
        assert isinstance(node, ast.Assign), f"{slug}: the parameters cell may only assign values"
        ast.literal_eval(node.value)  # papermill can override only literals
        names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    missing = REQUIRED_PARAMETERS - names
    assert not missing, f"{slug}: parameters cell lacks {missing}"
    assert any(n in names for n in ("requests", "conversations")), f"{slug}: no request count parameter"
    assert "replicas" in names or "tensor" in names, f"{slug}: no replicas/tensor parameter"


def test_ends_with_a_check_that_fails_loudly(slug: str) -> None:
    cells = _cells(slug)
    code = [c for c in cells if c.cell_type == "code"]
    assert cells[-2].cell_type == "markdown" and "Did it work?" in cells[-2].source
    last = code[-1].source
    assert "raise AssertionError" in last and "Hint" in last, f"{slug}: the last cell must fail with a hint"
    assert re.search(rf"✅ {slug[:2]} passed", last), f"{slug}: the last cell must say it passed"


def test_teaches_and_carries_instructor_notes(slug: str) -> None:
    cells = _cells(slug)
    prose = [c for c in cells if c.cell_type == "markdown"]
    assert len(prose) >= 4, f"{slug}: teach between cells (only {len(prose)} markdown cells)"
    assert "**Instructor talking points:**" in prose[0].source, f"{slug}: no instructor talking points in its header"


def test_uses_only_the_public_library(slug: str) -> None:
    for cell in _cells(slug):
        if cell.cell_type != "code":
            continue
        assert not re.search(r"llmd_lab\.(lab|sim|bench)\b|from llmd_lab\.(lab|sim|bench)", cell.source), (
            f"{slug}: notebooks must run on a real cluster; never import the lab or the simulators"
        )
        assert "%" not in "".join(line[:1] for line in cell.source.splitlines()), f"{slug}: no IPython magics"


def test_committed_notebook_holds_no_secret(slug: str) -> None:
    text = notebook(slug).read_text() + (NOTEBOOK_DIR / f"{slug}.py").read_text()
    assert find_secrets(text, []) == []


# ------------------------------------------------------------------------------ safe for an attendee (issue 12/13)
#: Reads an attendee cannot make: cluster-scoped kinds, every namespace at once, nodes.
CLUSTER_WIDE = re.compile(
    r"gpu_inventory|_for_all_namespaces|list_node\b|list_namespace\b|--all-namespaces|\s-A\b"
    r"|\b(get|describe)\s+(nodes?|no|csv|clusterqueues?|datasciencecluster|dsc|namespaces?|ns)\b"
    r'|"(Node|Namespace|ClusterQueue|ClusterServiceVersion|DataScienceCluster|DSCInitialization|ClusterRole)"'
)
#: Lessons that break things or take many GPUs: on a cluster only with `settings.require_opt_in` first.
DISRUPTIVE = {"06-tensor-parallelism", "07-pd-disaggregation", "08-troubleshooting"}


def _code(slug: str) -> list[str]:
    return [c.source for c in _cells(slug) if c.cell_type == "code"]


def test_lists_nothing_cluster_wide(slug: str) -> None:
    for source in _code(slug):
        found = CLUSTER_WIDE.search(source)
        assert not found, f"{slug}: {found.group(0)!r} reads cluster-wide objects an attendee cannot read"
        for call in ast.walk(ast.parse("\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith("!")))):
            if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "list_objects":
                scoped = len(call.args) >= 4 or any(k.arg == "namespace" for k in call.keywords)
                assert scoped, f"{slug}: k8s.list_objects without a namespace lists every namespace"


def test_hard_codes_no_namespace(slug: str) -> None:
    params = next(c for c in _cells(slug) if "parameters" in c.metadata.get("tags", []))
    values = {t.id: ast.literal_eval(n.value) for n in ast.parse(params.source).body for t in n.targets}
    assert values["namespace"] is None, f"{slug}: namespace must default to None (your settings / workbench project)"
    for source in _code(slug):
        assert "private-ai" not in source, f"{slug}: hard-coded namespace private-ai"
        literal = re.search(r"""namespace\s*=\s*["'][a-z0-9-]+["']|\s-n\s+[a-z][a-z0-9-]*\b""", source)
        assert not literal, f"{slug}: hard-coded namespace {literal.group(0)!r}: use conn.namespace"


def test_disruptive_lessons_ask_for_the_opt_in_first(slug: str) -> None:
    code = "\n".join(_code(slug))
    first_apply = min((i for i in (code.find("deploy.apply("), code.find("apply -f")) if i >= 0), default=-1)
    if slug not in DISRUPTIVE:
        return
    opt_in = code.find("settings.require_opt_in(")
    assert 0 <= opt_in < first_apply, f"{slug}: call settings.require_opt_in(conn, cfg, ...) before the first apply"


#: Issue 11: each cluster failure an attendee can meet, as 08's text must name it (the doctor's tests pin the
#: diagnosis: tests/lib/test_doctor.py, tests/lab/controller/test_kueue_webhook.py).
FAILURES_08_NAMES = {
    "gated model without a token": ("GatedRepoError", "Init:CrashLoopBackOff", "storageSecretName"),
    "presets not combined": ("PresetsCombined=False", "CombineBaseError"),
    "missing Kueue queue label": ('missing required label "kueue.x-k8s.io/queue-name"',),
    "403": ("403 Forbidden", "oc adm policy"),
    "quota exceeded": ("exceeded quota", "insufficient unused quota"),
    "unschedulable": ("Insufficient nvidia.com/gpu",),
}


def test_troubleshooting_names_every_failure_an_attendee_can_meet(slug: str) -> None:
    if slug != "08-troubleshooting":
        return
    prose = "\n".join(c.source for c in _cells(slug) if c.cell_type == "markdown")
    missing = {case: [w for w in words if w not in prose] for case, words in FAILURES_08_NAMES.items()}
    assert not any(missing.values()), f"08's text does not explain: {({k: v for k, v in missing.items() if v})}"
