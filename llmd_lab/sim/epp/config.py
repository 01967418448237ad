"""Strict ``EndpointPickerConfig`` loading (GIE v1.0.0 ``pkg/epp/config/loader``).

Decoding is strict like the real EPP's (unknown fields are errors), plugins are created through the
registry by ``type``, and the loader's defaulting rules apply: no profiles → one ``default`` profile
with every filter/scorer/picker; one profile and no handler → ``single-profile-handler``; scorer
without weight → 1; profile without picker → ``max-score-picker``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from llmd_lab.kserve import epp as kserve_epp
from llmd_lab.sim.epp.plugins import REGISTRY
from llmd_lab.sim.epp.plugins.base import (
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
from llmd_lab.sim.epp.plugins.profile import PdProfileHandler
from llmd_lab.sim.epp.scheduler import Scheduler, SchedulerProfile

API_VERSION = "inference.networking.x-k8s.io/v1alpha1"
KIND = "EndpointPickerConfig"
DEFAULT_SCORER_WEIGHT = 1

# what KServe injects when an LLMInferenceService sets no EPP config (the one KServe vocabulary)
KSERVE_DEFAULT_CONFIG = kserve_epp.DEFAULT_CONFIG_TEXT
KSERVE_PD_CONFIG = kserve_epp.PD_CONFIG_TEXT

_TOP_FIELDS = {"apiVersion", "kind", "plugins", "schedulingProfiles"}
_PLUGIN_FIELDS = {"name", "type", "parameters"}
_PROFILE_FIELDS = {"name", "plugins"}
_REF_FIELDS = {"pluginRef", "weight"}


@dataclass
class LoadedConfig:
    """A loaded config: plugins by name (config order), the scheduler, and the request-control hooks."""

    plugins: dict[str, Plugin]
    scheduler: Scheduler
    pre_request: list[PreRequest] = field(default_factory=list)
    post_response: list[PostResponse] = field(default_factory=list)
    text: str = ""

    def plugins_of_type(self, type_name: str) -> list[Plugin]:
        return [p for p in self.plugins.values() if p.type_name == type_name]


def _unknown(where: str, obj: dict, allowed: set[str]) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        hint = " (plugin settings go under 'parameters')" if extra[0] == "config" and "parameters" in allowed else ""
        raise ConfigError(f'strict decoding error: unknown field "{where}{extra[0]}"{hint}')


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _weight(value: Any, where: str) -> int | None:
    if value is None:
        return None
    # YAML 2.0 reaches Go as JSON 2 and decodes into the int field; 1.5 does not.
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ConfigError(f"{where}: weight must be an integer, got {value!r}")
    return int(value)


def _parse_root(text: str | bytes) -> dict[str, Any]:
    """The decoded top level, with apiVersion/kind checked and unknown fields refused (strict, as upstream)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"failed to decode configuration JSON/YAML: {exc}") from None
    raw = _mapping(raw, "the EndpointPickerConfig")
    if raw.get("apiVersion") != API_VERSION or raw.get("kind") != KIND:
        raise ConfigError(
            f"expected apiVersion {API_VERSION} and kind {KIND}, got apiVersion {raw.get('apiVersion')!r} "
            f"and kind {raw.get('kind')!r}"
        )
    _unknown("", raw, _TOP_FIELDS)
    return raw


def _instantiate_plugins(plugin_specs: Any, handle: PluginHandle) -> dict[str, Plugin]:
    """Each ``plugins[]`` entry built by its registered factory; names default to the type, as upstream."""
    if not isinstance(plugin_specs, list) or not plugin_specs:
        raise ConfigError("'plugins' is required and must be a non-empty list")
    plugins: dict[str, Plugin] = {}
    for i, spec in enumerate(plugin_specs):
        spec = _mapping(spec, f"plugins[{i}]")
        _unknown(f"plugins[{i}].", spec, _PLUGIN_FIELDS)
        type_name = spec.get("type")
        name = spec.get("name") or type_name
        if not type_name:
            raise ConfigError(f"plugin '{name or f'plugins[{i}]'}' is missing a type")
        if not isinstance(type_name, str) or not isinstance(name, str):
            raise ConfigError(f"plugins[{i}]: 'name' and 'type' must be strings")
        if name in plugins:
            raise ConfigError(f"duplicate plugin name '{name}'")
        factory = REGISTRY.get(type_name)
        if factory is None:
            raise ConfigError(
                f"plugin type '{type_name}' is not found in registry (known types: {', '.join(sorted(REGISTRY))})"
            )
        plugins[name] = factory(name, spec.get("parameters") or {}, handle)
    return plugins


def _profile_handler(plugins: dict[str, Plugin], profile_count: int, handle: PluginHandle) -> ProfileHandler:
    """Exactly one profile handler; a single profile without one gets single-profile-handler (GIE defaulting)."""
    handlers = [p for p in plugins.values() if isinstance(p, ProfileHandler)]
    if profile_count == 1 and not handlers:
        auto = REGISTRY["single-profile-handler"]("single-profile-handler", {}, handle)
        plugins.setdefault(auto.name, auto)
        handlers = [auto]  # type: ignore[list-item]
    if len(handlers) > 1:
        raise ConfigError(f"only one profile handler is allowed, found {', '.join(repr(h.name) for h in handlers)}")
    if not handlers:
        raise ConfigError("no profile handler was specified (add single-profile-handler or pd-profile-handler)")
    return handlers[0]


def _build_profile(i: int, spec: Any, plugins: dict[str, Plugin], handle: PluginHandle) -> SchedulerProfile:
    """One scheduling profile: its filters, weighted scorers and one picker (max-score-picker by default)."""
    spec = _mapping(spec, f"schedulingProfiles[{i}]")
    _unknown(f"schedulingProfiles[{i}].", spec, _PROFILE_FIELDS)
    pname = spec.get("name")
    if not pname or not isinstance(pname, str):
        raise ConfigError(f"schedulingProfiles[{i}] needs a name")
    refs = spec.get("plugins") or []
    if not isinstance(refs, list):
        raise ConfigError(f"scheduling profile '{pname}': 'plugins' must be a list")
    filters: list[Filter] = []
    scorers: list[tuple[Scorer, int]] = []
    pickers: list[Picker] = []
    for j, ref in enumerate(refs):
        plugin, weight = _resolve_ref(i, j, pname, ref, plugins)
        _place(pname, plugin, weight, filters, scorers, pickers)
    picker = pickers[0] if pickers else _default_picker(plugins, handle)
    return SchedulerProfile(pname, filters, scorers, picker, handle.observer)  # type: ignore[arg-type]


def _resolve_ref(i: int, j: int, pname: str, ref: Any, plugins: dict[str, Plugin]) -> tuple[Plugin, int | None]:
    ref = _mapping(ref, f"schedulingProfiles[{i}].plugins[{j}]")
    _unknown(f"schedulingProfiles[{i}].plugins[{j}].", ref, _REF_FIELDS)
    ref_name = ref.get("pluginRef")
    if not ref_name:
        raise ConfigError(f"scheduling profile '{pname}': plugins[{j}] is missing 'pluginRef'")
    plugin = plugins.get(ref_name)
    if plugin is None:
        raise ConfigError(
            f"scheduling profile '{pname}' references plugin '{ref_name}', which is not defined in 'plugins'"
        )
    return plugin, _weight(ref.get("weight"), f"scheduling profile '{pname}', plugin '{ref_name}'")


def _place(pname: str, plugin: Plugin, weight: int | None, filters: list[Filter],
           scorers: list[tuple[Scorer, int]], pickers: list[Picker]) -> None:
    """Put a referenced plugin in every role it plays (one plugin may be both filter and scorer)."""
    matched = False
    if isinstance(plugin, Filter):
        filters.append(plugin)
        matched = True
    if isinstance(plugin, Scorer):
        scorers.append((plugin, DEFAULT_SCORER_WEIGHT if weight is None else weight))
        matched = True
    if isinstance(plugin, Picker):
        if pickers:
            raise ConfigError(
                f"scheduling profile '{pname}' has two pickers ('{pickers[0].name}', '{plugin.name}'); only one"
            )
        pickers.append(plugin)
        matched = True
    if not matched:
        raise ConfigError(
            f"scheduling profile '{pname}': plugin '{plugin.name}' (type {plugin.type_name}) is not a filter, "
            "scorer or picker and cannot be listed in a profile"
        )


def _default_picker(plugins: dict[str, Plugin], handle: PluginHandle) -> Picker:
    existing = next((p for p in plugins.values() if p.type_name == "max-score-picker"), None)
    if existing is None:
        existing = REGISTRY["max-score-picker"]("max-score-picker", {}, handle)
        plugins[existing.name] = existing
    return existing  # type: ignore[return-value]


def _check_handler_fits(handler: ProfileHandler, profiles: dict[str, SchedulerProfile]) -> None:
    if handler.type_name == "single-profile-handler" and len(profiles) > 1:
        raise ConfigError("single-profile-handler cannot support multiple scheduling profiles "
                          f"({', '.join(profiles)}); use pd-profile-handler or one profile")
    if isinstance(handler, PdProfileHandler) and handler.decode_profile not in profiles:
        raise ConfigError(f"pd-profile-handler '{handler.name}' needs a scheduling profile named "
                          f"'{handler.decode_profile}' (profiles: {', '.join(profiles)})")


def load_config(text: str | bytes, handle: PluginHandle | None = None) -> LoadedConfig:
    """Parse, instantiate and default an EndpointPickerConfig; raise :class:`ConfigError` naming the problem."""
    handle = handle or PluginHandle()
    raw = _parse_root(text)
    plugins = _instantiate_plugins(raw.get("plugins"), handle)
    profile_specs = raw.get("schedulingProfiles")
    if profile_specs is None:
        profile_specs = [{"name": "default", "plugins": [
            {"pluginRef": n} for n, p in plugins.items() if isinstance(p, Filter | Scorer | Picker)]}]
    if not isinstance(profile_specs, list) or not profile_specs:
        raise ConfigError("'schedulingProfiles' must be a non-empty list")
    handler = _profile_handler(plugins, len(profile_specs), handle)
    profiles: dict[str, SchedulerProfile] = {}
    for i, spec in enumerate(profile_specs):
        profile = _build_profile(i, spec, plugins, handle)
        if profile.name in profiles:
            raise ConfigError(f"duplicate scheduling profile name '{profile.name}'")
        profiles[profile.name] = profile
    _check_handler_fits(handler, profiles)

    scheduler = Scheduler(handler, profiles, handle.observer)
    return LoadedConfig(
        plugins=plugins,
        scheduler=scheduler,
        pre_request=[p for p in plugins.values() if isinstance(p, PreRequest)],
        post_response=[p for p in plugins.values() if isinstance(p, PostResponse)],
        text=text.decode() if isinstance(text, bytes) else text,
    )
