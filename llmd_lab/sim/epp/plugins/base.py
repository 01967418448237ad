"""Plugin kinds, the registry of plugin types, and strict parameter decoding.

Like the real EPP, a plugin is created by a factory looked up by its ``type`` name; one object may
implement several extension points (the prefix scorer is a Scorer *and* a PreRequest hook).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from llmd_lab.sim.epp.metrics import EppMetrics
from llmd_lab.sim.epp.types import (
    CycleState,
    Endpoint,
    LLMRequest,
    ProfileRunResult,
    SchedulingResult,
    ScoredEndpoint,
)


class ConfigError(ValueError):
    """An EndpointPickerConfig (or a plugin's parameters) that the EPP refuses to load."""


@dataclass
class PluginHandle:
    """What factories get besides their parameters: a clock, a seeded RNG, and model tokenizers."""

    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    tokenizer_for: Callable[[str], Any] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    observer: EppMetrics | None = None  # the EPP's metrics (``record_prefix_match``), when there are any


class Plugin:
    """Base of every plugin: ``type_name`` is the registered type, ``name`` the configured name."""

    type_name: ClassVar[str] = ""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self:
        """The factory :func:`register` files under ``type_name``. This default is for a plugin that takes no
        parameters, and the lab rejects any given. Upstream's factories for these plugins ignore their
        parameters (GIE v1.0.0 ``QueueScorerFactory(name string, _ json.RawMessage, …)``): the lab is stricter."""
        decode_parameters(name, cls.type_name, params, {})
        return cls(name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class ProfileHandler(Plugin):
    def pick(
        self,
        state: CycleState,
        request: LLMRequest,
        profiles: Mapping[str, Any],
        results: Mapping[str, ProfileRunResult | None],
    ) -> dict[str, Any]:
        raise NotImplementedError

    def process_results(
        self, state: CycleState, request: LLMRequest, results: dict[str, ProfileRunResult | None]
    ) -> SchedulingResult:
        raise NotImplementedError


class Filter(Plugin):
    def filter(self, state: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[Endpoint]:
        raise NotImplementedError


class Scorer(Plugin):
    def score(self, state: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> dict[Endpoint, float]:
        raise NotImplementedError


class Picker(Plugin):
    def pick(self, state: CycleState, scored: list[ScoredEndpoint]) -> tuple[list[Endpoint], str]:
        """Return the targets and a sentence saying why (for the decision trace)."""
        raise NotImplementedError


class PreRequest(Plugin):
    def pre_request(self, request: LLMRequest, result: SchedulingResult, target_port: int) -> dict[str, str | None]:
        """Run after scheduling; return request headers to set (``None`` removes one)."""
        raise NotImplementedError


class PostResponse(Plugin):
    def post_response(self, request: LLMRequest, endpoint: Endpoint, response_headers: dict[str, str]) -> dict[str, str]:
        """Run when the model server's response headers arrive; return response headers to add."""
        raise NotImplementedError


Factory = Callable[[str, Mapping[str, Any], PluginHandle], Plugin]
REGISTRY: dict[str, Factory] = {}


def register(type_name: str) -> Callable[[type[Plugin]], type[Plugin]]:
    """Class decorator: register ``cls.from_parameters`` under ``type_name``."""

    def wrap(cls: type[Plugin]) -> type[Plugin]:
        cls.type_name = type_name
        REGISTRY[type_name] = cls.from_parameters
        return cls

    return wrap


# ---------------------------------------------------------------------------------------------------------
# Strict parameter decoding


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Parse a Go duration string (``"2m"``, ``"1h30m"``, ``"500ms"``) into seconds."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r} (use Go syntax such as 30s, 2m, 1h30m)")
    return total


def _as_int(value: Any) -> int:
    # YAML `2.0` arrives as a float; Go's JSON decoder sees `2` after YAML→JSON and accepts it.
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _checked(test: Callable[[Any], bool], expected: str) -> Callable[[Any], Any]:
    """A coercer that keeps the value as it is when ``test`` holds and names what was expected otherwise."""

    def coerce(value: Any) -> Any:
        if not test(value):
            raise ValueError(f"expected {expected}, got {value!r}")
        return list(value) if isinstance(value, list) else value

    return coerce


def _as_duration(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError(f"expected a duration string such as '2m', got {value!r}")
    return parse_go_duration(value)


_COERCERS: dict[str, Callable[[Any], Any]] = {
    "int": _as_int,
    "float": _as_float,
    "bool": _checked(lambda v: isinstance(v, bool), "true or false"),
    "str": _checked(lambda v: isinstance(v, str), "a string"),
    "duration": _as_duration,
    "strlist": _checked(lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
    "map": _checked(lambda v: isinstance(v, dict), "a mapping"),
}
"""Parameter kinds → how Go's typed JSON decoding accepts or refuses a value of that kind."""


def _coerce(kind: str, value: Any) -> Any:
    return _COERCERS[kind](value)


def decode_parameters(
    plugin_name: str, type_name: str, raw: Mapping[str, Any] | None, spec: Mapping[str, tuple[str, Any]]
) -> dict[str, Any]:
    """Decode ``raw`` against ``spec`` (``{param: (kind, default)}``) as the plugin factories'
    ``json.Unmarshal`` does: a wrong type fails, a key the plugin does not know is ignored (a typo such as
    ``treshold`` leaves the default in force, on the cluster as here)."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"plugin '{plugin_name}' (type {type_name}): parameters must be a mapping, got {raw!r}")
    out: dict[str, Any] = {}
    for key, (kind, default) in spec.items():
        if key not in raw or raw[key] is None:
            out[key] = default
            continue
        try:
            out[key] = _coerce(kind, raw[key])
        except ValueError as exc:
            raise ConfigError(f"plugin '{plugin_name}' (type {type_name}): bad parameter '{key}': {exc}") from None
    return out


def scored_dict(endpoints: Sequence[Endpoint], value: float) -> dict[Endpoint, float]:
    return dict.fromkeys(endpoints, value)
