"""``prefill-header-handler``: tell the decode pod's routing sidecar where to prefill."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmd_lab.sim.epp.plugins.base import PluginHandle, PreRequest, decode_parameters, register
from llmd_lab.sim.epp.types import LLMRequest, SchedulingResult

PREFILL_HEADER = "x-prefiller-host-port"


@register("prefill-header-handler")
class PrefillHeaderHandler(PreRequest):
    """Clear ``x-prefiller-host-port``, then set it to ``<prefill pod IP>:<port>`` if prefill ran."""

    def __init__(self, name: str, prefill_profile: str) -> None:
        super().__init__(name)
        self.prefill_profile = prefill_profile

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> PrefillHeaderHandler:
        p = decode_parameters(name, cls.type_name, params, {"prefillProfile": ("str", "prefill")})
        return cls(name, p["prefillProfile"])

    def pre_request(self, request: LLMRequest, result: SchedulingResult, target_port: int) -> dict[str, str | None]:
        prefill = result.profile_results.get(self.prefill_profile)
        if prefill is None or not prefill.target_endpoints:
            return {PREFILL_HEADER: None}
        return {PREFILL_HEADER: f"{prefill.target_endpoints[0].address}:{target_port}"}
