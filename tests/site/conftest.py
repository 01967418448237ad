"""Session fixtures for the site tests: Antora installed from the lockfile, and one build of the course."""

from __future__ import annotations

from pathlib import Path

import pytest
from sitebuild import SiteBuild, course_checkout, ensure_antora_installed, run_antora


@pytest.fixture(scope="session")
def antora_bin() -> Path:
    return ensure_antora_installed()


@pytest.fixture(scope="session")
def built_site(antora_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> SiteBuild:
    out = tmp_path_factory.mktemp("site")
    return run_antora(antora_bin, course_checkout(tmp_path_factory.mktemp("course")), out)
