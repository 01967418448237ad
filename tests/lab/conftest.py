"""Fixtures shared by the lab's schema tests: ``registry``, every bundled CRD registered once per module."""

from __future__ import annotations

import pytest

from llmd_lab.lab import crds
from llmd_lab.lab.apiserver.registry import ResourceRegistry


@pytest.fixture(scope="module")
def registry() -> ResourceRegistry:
    reg = ResourceRegistry()
    for crd in crds.load():
        reg.register_crd(crd)
    return reg
