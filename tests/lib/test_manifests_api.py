"""The manifests package keeps every name its callers use at ``llmd_lab.manifests`` (it was one module)."""

from __future__ import annotations

import re
from pathlib import Path

from llmd_lab import manifests

ROOT = Path(__file__).resolve().parents[2]
_IMPORT = re.compile(r"^\s*from llmd_lab import ([^\n(]+)$", re.M)
_FROM = re.compile(r"^\s*from llmd_lab\.manifests import (\([^)]*\)|[^\n]+)$", re.M)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _aliases(text: str) -> set[str]:
    """The names a file binds the package to (``from llmd_lab import manifests [as m]``)."""
    out = set()
    for names in _IMPORT.findall(text):
        for part in names.split("#")[0].split(","):
            words = part.split()
            if words and words[0] == "manifests":
                out.add(words[-1])
    return out


def _used(text: str) -> set[str]:
    names = set()
    for alias in _aliases(text):
        names |= set(re.findall(rf"(?<![\w.]){re.escape(alias)}\.([A-Za-z_]\w*)", text))
    for block in _FROM.findall(text):
        names |= {n for n in _NAME.findall(re.sub(r"#[^\n]*", "", block)) if n != "as"}
    return names


def test_every_name_callers_use_is_exported():
    paths = [*ROOT.glob("notebooks/*.py"), *ROOT.glob("llmd_lab/**/*.py"), *ROOT.glob("assets/**/*.py"),
             *ROOT.glob("tests/**/*.py")]
    here = Path(__file__).resolve()
    used = {name: str(p.relative_to(ROOT)) for p in paths if "manifests" not in p.parent.parts and p != here
            for name in _used(p.read_text(encoding="utf-8"))}
    assert {"llm_inference_service", "KIND", "ENABLE_AUTH_ANNOTATION"} <= set(used), "the scan misses callers"
    missing = {name: where for name, where in used.items() if name not in manifests.__all__}
    assert not missing, f"used but not exported by llmd_lab.manifests: {missing}"


def test_every_exported_name_resolves():
    assert [name for name in manifests.__all__ if not hasattr(manifests, name)] == []
