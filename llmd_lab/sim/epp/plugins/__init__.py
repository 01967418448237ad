"""Every plugin type the RHOAI 3.0 EPP registers (GIE v1.0.0 in-tree + llm-d scheduler v0.3.1).

Importing this package fills :data:`REGISTRY` (type name → factory).
"""

from llmd_lab.sim.epp.plugins import filters, pickers, precise_prefix, prefix, prerequest, profile, scorers
from llmd_lab.sim.epp.plugins.base import (
    REGISTRY,
    ConfigError,
    Filter,
    Picker,
    Plugin,
    PluginHandle,
    PostResponse,
    PreRequest,
    ProfileHandler,
    Scorer,
)

__all__ = [
    "REGISTRY",
    "ConfigError",
    "Filter",
    "Picker",
    "Plugin",
    "PluginHandle",
    "PostResponse",
    "PreRequest",
    "ProfileHandler",
    "Scorer",
    "filters",
    "pickers",
    "precise_prefix",
    "prefix",
    "prerequest",
    "profile",
    "scorers",
]
