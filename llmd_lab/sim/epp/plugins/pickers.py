"""Pickers (GIE v1.0.0 ``plugins/picker``): turn scored endpoints into the target(s)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmd_lab.sim.epp.plugins.base import Picker, PluginHandle, decode_parameters, register
from llmd_lab.sim.epp.types import Endpoint, ScoredEndpoint

_PARAMS: dict[str, tuple[str, Any]] = {"maxNumOfEndpoints": ("int", 1)}


class _BasePicker(Picker):
    def __init__(self, name: str, max_endpoints: int, handle: PluginHandle) -> None:
        super().__init__(name)
        self.max_endpoints = max_endpoints
        self.rng = handle.rng

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle):
        p = decode_parameters(name, cls.type_name, params, _PARAMS)
        return cls(name, p["maxNumOfEndpoints"] if p["maxNumOfEndpoints"] > 0 else 1, handle)


@register("max-score-picker")
class MaxScorePicker(_BasePicker):
    """Shuffle, then stable-sort by score: the best wins and ties are broken uniformly at random."""

    def pick(self, state, scored: list[ScoredEndpoint]) -> tuple[list[Endpoint], str]:
        if not scored:
            return [], "no candidates"
        shuffled = list(scored)
        self.rng.shuffle(shuffled)
        shuffled.sort(key=lambda s: s.score, reverse=True)
        chosen = shuffled[: self.max_endpoints]
        best = chosen[0].score
        tied = sum(1 for s in scored if s.score == best)
        why = f"highest total score {best:.4g}"
        if tied > 1:
            why += f" (tied with {tied - 1} other endpoint{'s' if tied > 2 else ''}; broken at random)"
        return [s.endpoint for s in chosen], why


@register("random-picker")
class RandomPicker(_BasePicker):
    """Uniformly random, ignoring scores."""

    def pick(self, state, scored: list[ScoredEndpoint]) -> tuple[list[Endpoint], str]:
        shuffled = list(scored)
        self.rng.shuffle(shuffled)
        return [s.endpoint for s in shuffled[: self.max_endpoints]], f"random among {len(scored)}"


@register("weighted-random-picker")
class WeightedRandomPicker(_BasePicker):
    """A-Res weighted sampling: key ``U^(1/score)``; falls back to random when every score is ≤ 0."""

    def pick(self, state, scored: list[ScoredEndpoint]) -> tuple[list[Endpoint], str]:
        if all(s.score <= 0 for s in scored):
            shuffled = list(scored)
            self.rng.shuffle(shuffled)
            return [s.endpoint for s in shuffled[: self.max_endpoints]], "all scores ≤ 0: random"
        keyed = []
        for s in scored:
            if s.score <= 0:
                keyed.append((0.0, s))
                continue
            u = self.rng.random() or 1e-10
            keyed.append((u ** (1.0 / s.score), s))
        keyed.sort(key=lambda k: k[0], reverse=True)
        return [s.endpoint for _, s in keyed[: self.max_endpoints]], "weighted random by score"
