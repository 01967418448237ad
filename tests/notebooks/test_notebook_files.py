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
