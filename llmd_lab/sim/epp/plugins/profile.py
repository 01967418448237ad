"""Profile handlers: which scheduling profiles run for a request, and which result is primary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from llmd_lab.sim.epp.plugins.base import PluginHandle, ProfileHandler, decode_parameters, register
from llmd_lab.sim.epp.types import CycleState, LLMRequest, ProfileRunResult, SchedulingError, SchedulingResult


@register("single-profile-handler")
class SingleProfileHandler(ProfileHandler):
    """Runs every profile once (the loader allows only one) and makes it primary."""

    def pick(self, state, request, profiles, results):
        return {} if results else dict(profiles)

    def process_results(self, state, request, results) -> SchedulingResult:
        if len(results) != 1:
            raise SchedulingError(f"single profile handler is expected to process one profile, got {len(results)}")
        name, result = next(iter(results.items()))
        if result is None:
            raise SchedulingError(f"failed to run scheduler profile '{name}'")
        return SchedulingResult(profile_results=dict(results), primary_profile_name=name)


@register("pd-profile-handler")
class PdProfileHandler(ProfileHandler):
    """Decode first; then prefill too unless the uncached part of the prompt is under ``threshold``.

    The cached part comes from the approximate prefix scorer's cycle state (characters, 64 per block),
    with upstream's "first hit is the model name" minus one.
    """

    PARAMS: ClassVar[dict[str, tuple[str, Any]]] = {
        "threshold": ("int", 0),
        "decodeProfile": ("str", "decode"),
        "prefillProfile": ("str", "prefill"),
        "prefixPluginName": ("str", "prefix-cache-scorer"),
        "hashBlockSize": ("int", 64),
    }

    def __init__(self, name: str, threshold: int, decode: str, prefill: str, prefix_plugin: str, block: int):
        super().__init__(name)
        self.threshold = threshold
        self.decode_profile = decode
        self.prefill_profile = prefill
        self.prefix_plugin_name = prefix_plugin
        self.hash_block_size = block
        self.last_reason = ""

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> PdProfileHandler:
        p = decode_parameters(name, cls.type_name, params, cls.PARAMS)
        return cls(name, p["threshold"], p["decodeProfile"], p["prefillProfile"], p["prefixPluginName"],
                   p["hashBlockSize"])

    def pick(self, state: CycleState, request: LLMRequest, profiles, results):
        if self.decode_profile not in results:
            return {self.decode_profile: profiles[self.decode_profile]} if self.decode_profile in profiles else {}
        if len(results) == len(profiles) or results.get(self.decode_profile) is None:
            return {}
        if self.threshold > 0:
            decode_pod = results[self.decode_profile].target_endpoints[0]  # type: ignore[union-attr]
            prefix_state = state.get(f"prefix-cache-scorer/{self.prefix_plugin_name}")
            servers = prefix_state.cache_servers if prefix_state is not None else {}
            hit_blocks = max(servers.get(decode_pod.namespaced_name, 0) - 1, 0)
            prompt_len = len(request.prompt.encode())
            hit_pct = (hit_blocks * self.hash_block_size / prompt_len) if prompt_len else 0.0
            uncached = (1 - hit_pct) * prompt_len
            if uncached < self.threshold:
                state["pd-decision"] = f"decode only: {uncached:.0f} uncached characters < threshold {self.threshold}"
                return {}
            state["pd-decision"] = f"prefill+decode: {uncached:.0f} uncached characters ≥ threshold {self.threshold}"
        else:
            state["pd-decision"] = "prefill+decode: threshold 0 always disaggregates"
        if self.prefill_profile in profiles:
            return {self.prefill_profile: profiles[self.prefill_profile]}
        return {}

    def process_results(self, state, request, results: dict[str, ProfileRunResult | None]) -> SchedulingResult:
        if results.get(self.decode_profile) is None:
            raise SchedulingError("failed to find available decode workers")
        kept = {self.decode_profile: results[self.decode_profile]}
        if results.get(self.prefill_profile) is not None:
            kept[self.prefill_profile] = results[self.prefill_profile]
        return SchedulingResult(profile_results=kept, primary_profile_name=self.decode_profile)
