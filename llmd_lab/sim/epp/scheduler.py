"""The scheduling loop (GIE v1.0.0 ``scheduling/scheduler.go`` + ``scheduler_profile.go``).

profile handler picks profiles → each profile filters, scores (``Σ weight·clamp(score)``, never
normalised by the weights) and picks → the handler combines the results. Every step is written to a
:class:`DecisionTrace` so learners can see *why* a pod was chosen.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from llmd_lab.sim.epp.metrics import EppMetrics
from llmd_lab.sim.epp.plugins.base import Filter, Picker, ProfileHandler, Scorer
from llmd_lab.sim.epp.types import (
    CycleState,
    Endpoint,
    LLMRequest,
    ProfileRunResult,
    SchedulingError,
    SchedulingResult,
    ScoredEndpoint,
)


@dataclass
class FilterTrace:
    plugin: str
    type: str
    removed: list[str]
    kept: list[str]


@dataclass
class ScorerTrace:
    plugin: str
    type: str
    weight: int
    raw: dict[str, float]
    weighted: dict[str, float]


@dataclass
class ProfileTrace:
    name: str
    candidates: list[str]
    filters: list[FilterTrace] = field(default_factory=list)
    scorers: list[ScorerTrace] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)
    picked: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class DecisionTrace:
    """One request's routing decision, JSON-ready via :meth:`to_dict`."""

    request_id: str
    model: str
    candidates: list[str]
    profiles: list[ProfileTrace] = field(default_factory=list)
    primary_profile: str = ""
    picked: str = ""
    destination: str = ""
    reason: str = ""
    error: str = ""
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SchedulerProfile:
    """Filters, weighted scorers and one picker, run in that order."""

    def __init__(self, name: str, filters: list[Filter], scorers: list[tuple[Scorer, int]], picker: Picker,
                 observer: EppMetrics | None = None) -> None:
        self.name = name
        self.filters = filters
        self.scorers = scorers
        self.picker = picker
        self.observer = observer

    def _timed(self, point: str, plugin: Any, start: float) -> None:
        if self.observer is not None:
            self.observer.record_plugin_duration(point, plugin.type_name, plugin.name, time.perf_counter() - start)

    def run(self, request: LLMRequest, state: CycleState, candidates: list[Endpoint],
            trace: ProfileTrace) -> ProfileRunResult | None:
        endpoints = list(candidates)
        for flt in self.filters:
            start = time.perf_counter()
            kept = flt.filter(state, request, endpoints)
            self._timed("Filter", flt, start)
            kept_set = set(kept)
            trace.filters.append(FilterTrace(
                flt.name, flt.type_name,
                removed=[ep.name for ep in endpoints if ep not in kept_set], kept=[ep.name for ep in kept]))
            endpoints = kept
            if not endpoints:
                trace.reason = f"filter '{flt.name}' removed every endpoint: no pods available for the given request"
                return None
        if not endpoints:
            trace.reason = "no pods available for the given request"
            return None
        totals = dict.fromkeys(endpoints, 0.0)
        for scorer, weight in self.scorers:
            start = time.perf_counter()
            raw = scorer.score(state, request, endpoints)
            self._timed("Scorer", scorer, start)
            clamped = {ep: min(max(raw.get(ep, 0.0), 0.0), 1.0) for ep in endpoints}
            for ep, value in clamped.items():
                totals[ep] += weight * value
            trace.scorers.append(ScorerTrace(
                scorer.name, scorer.type_name, weight,
                raw={ep.name: round(v, 6) for ep, v in clamped.items()},
                weighted={ep.name: round(weight * v, 6) for ep, v in clamped.items()}))
        trace.totals = {ep.name: round(v, 6) for ep, v in totals.items()}
        start = time.perf_counter()
        picked, why = self.picker.pick(state, [ScoredEndpoint(ep, s) for ep, s in totals.items()])
        self._timed("Picker", self.picker, start)
        trace.picked = [ep.name for ep in picked]
        trace.reason = f"{self.picker.type_name}: {why}"
        if not picked:
            return None
        return ProfileRunResult(picked)


class Scheduler:
    """Runs the profile handler's loop over the configured profiles."""

    def __init__(self, handler: ProfileHandler, profiles: Mapping[str, SchedulerProfile], observer: EppMetrics | None = None) -> None:
        self.handler = handler
        self.profiles = dict(profiles)
        self.observer = observer

    def schedule(self, request: LLMRequest, candidates: list[Endpoint],
                 trace: DecisionTrace | None = None) -> tuple[SchedulingResult, DecisionTrace]:
        """Return the result and its trace; raise :class:`SchedulingError` (trace attached) on failure."""
        start = time.perf_counter()
        if trace is None:
            trace = DecisionTrace(request.request_id, request.target_model, [ep.name for ep in candidates])
        state = CycleState()
        results: dict[str, ProfileRunResult | None] = {}
        try:
            while True:
                chosen = self.handler.pick(state, request, self.profiles, results)
                if not chosen:
                    break
                for name, profile in chosen.items():
                    profile_trace = ProfileTrace(name, [ep.name for ep in candidates])
                    trace.profiles.append(profile_trace)
                    results[name] = profile.run(request, state, candidates, profile_trace)
            if "pd-decision" in state:
                trace.notes.append(str(state["pd-decision"]))
            if not results:
                raise SchedulingError("no profile was run for the request")
            result = self.handler.process_results(state, request, results)
        except SchedulingError as exc:
            trace.error = str(exc)
            trace.duration_s = time.perf_counter() - start
            exc.trace = trace  # type: ignore[attr-defined]
            raise
        finally:
            if self.observer is not None:
                self.observer.record_scheduler_duration(time.perf_counter() - start)
        primary = result.primary.target_endpoints[0]
        trace.primary_profile = result.primary_profile_name
        trace.picked = primary.name
        trace.destination = primary.hostport
        primary_trace = next((p for p in reversed(trace.profiles) if p.name == result.primary_profile_name), None)
        trace.reason = primary_trace.reason if primary_trace else ""
        trace.duration_s = time.perf_counter() - start
        return result, trace
