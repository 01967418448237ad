"""Fixtures of the benchmark-tool tests: a fast lab of their own, reached the way a laptop notebook does."""

from __future__ import annotations

import pytest
from labhelpers import running_lab


@pytest.fixture
def fast_lab(tmp_path, monkeypatch):
    """A lab of its own at --time-scale 200 (model loading well under a second) with attendee user1, reached
    through LLMD_LAB_HOME."""
    with running_lab(tmp_path / "lab", "--time-scale", "200", "--attendees", "1") as lab:
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        for key, value in {"KUBECONFIG": tmp_path / "none", "HOME": tmp_path, "LLMD_LAB_HOME": lab.home}.items():
            monkeypatch.setenv(key, str(value))
        yield lab
