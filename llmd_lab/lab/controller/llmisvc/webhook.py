"""KServe's LLMInferenceService validating webhook, rule for rule and word for word.

Mirrors red-hat-data-services/kserve@rhoai-3.0 pkg/controller/llmisvc/validation/llminferenceservice_validator.go
(webhook ``llminferenceservice.kserve-webhook-server.validator``, config/webhook/manifests.yaml; CREATE and
UPDATE): router cross-field rules, parallelism rules for ``spec`` and ``spec.prefill``, and the total
parallelism size being immutable on update. All errors are collected and returned as one
``apierrors.NewInvalid`` (422 Invalid), which kube-apiserver prefixes with ``admission webhook "…" denied the
request``::

    admission webhook "llminferenceservice.kserve-webhook-server.validator" denied the request:
    LLMInferenceService.serving.kserve.io "x" is invalid: spec.parallelism.dataLocal: Invalid value: "null":
    dataLocal must be set when data is set

Bad values print as apimachinery's ``field.Error`` does (numbers bare, strings and nil quoted); Go structs,
which it prints with ``%#v`` (pointer addresses included), are abbreviated to ``<type>{...}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmd_lab.kserve.names import GROUP, KIND
from llmd_lab.lab.apiserver.admission import AdmissionRequest, ValidatingWebhook, denied
from llmd_lab.lab.context import LabContext

WEBHOOK = "llminferenceservice.kserve-webhook-server.validator"
WORKER_NEEDS_PARALLELISM = (
    "when worker is specified, parallelism must be configured for either data parallelism or pipeline parallelism")


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error``: path, type (``Invalid value`` / ``Unsupported value``), bad value, detail."""

    field: str
    type: str
    value: Any
    detail: str

    def __str__(self) -> str:
        return f"{self.field}: {self.type}: {_go_value(self.value)}: {self.detail}"


def _go_value(value: Any) -> str:
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, GoStruct):
        return value.text
    return "{...}"


@dataclass(frozen=True)
class GoStruct:
    """A Go value ``%#v`` would print; the lab prints its type only (``v1.PodSpec{...}``)."""

    text: str


def _refs(refs: list[Mapping[str, Any]], type_name: str) -> GoStruct:
    items = ", ".join(f'{type_name}{{Name:"{r.get("name", "")}"}}' for r in refs)
    return GoStruct(f"[]{type_name}{{{items}}}")


def _is_dp(p: Mapping[str, Any]) -> bool:
    return (p.get("data") or 0) > 0 or (p.get("dataLocal") or 0) > 0


def _is_pp(p: Mapping[str, Any]) -> bool:
    return (p.get("pipeline") or 0) > 0


def router_errors(spec: Mapping[str, Any]) -> list[FieldError]:
    """validateRouterCrossFieldConstraints."""
    router = spec.get("router")
    http = ((router or {}).get("route") or {}).get("http") if router and router.get("route") is not None else None
    if http is None:
        return []
    gateway = router.get("gateway")
    refs, route_spec = http.get("refs") or [], http.get("spec")
    p = "spec.router.route.http"
    errs = []
    if refs and route_spec is not None:
        errs.append(FieldError(p, "Invalid value", GoStruct("v1alpha1.HTTPRouteSpec{...}"),
                               f"unsupported configuration: cannot use both custom HTTPRoute refs ('{p}.refs') and an "
                               f"inline route spec ('{p}.spec'); choose one"))
    if refs and gateway is not None and not gateway.get("refs"):
        errs.append(FieldError(f"{p}.refs", "Invalid value", _refs(refs, "v1.LocalObjectReference"),
                               f"unsupported configuration: custom HTTP routes ('{p}.refs') cannot be used with a "
                               f"managed gateway ('spec.router.gateway'); either remove '{p}.refs' or set "
                               "'spec.router.gateway.refs'"))
    if route_spec is not None and route_spec.get("parentRefs") and gateway is not None and gateway.get("refs"):
        errs.append(FieldError(f"{p}.spec", "Invalid value", GoStruct("v1.HTTPRouteSpec{...}"),
                               f"unsupported configuration: managed HTTP route spec ('{p}.spec') cannot be used with "
                               "custom gateway refs ('spec.router.gateway.refs'); either remove "
                               f"'spec.router.gateway.refs' or '{p}.spec.parentRefs'"))
    return errs


def workload_errors(base: str, workload: Mapping[str, Any]) -> list[FieldError]:
    """validateWorkloadParallelism for ``spec`` or ``spec.prefill``."""
    worker, par = workload.get("worker"), workload.get("parallelism")
    if worker is not None and par is None:
        return [FieldError(f"{base}.worker", "Invalid value", GoStruct("v1.PodSpec{...}"), WORKER_NEEDS_PARALLELISM)]
    if par is None:
        return []
    pp = f"{base}.parallelism"
    errs = []
    if worker is not None and not _is_dp(par) and not _is_pp(par):
        errs.append(FieldError(f"{base}.worker", "Invalid value", GoStruct("v1.PodSpec{...}"), WORKER_NEEDS_PARALLELISM))
    if _is_pp(par) and _is_dp(par):
        errs.append(FieldError(pp, "Invalid value", GoStruct("v1alpha1.ParallelismSpec{...}"),
                               "cannot set both pipeline parallelism and data parallelism (data or dataLocal) "
                               "simultaneously"))
    if par.get("data") is not None and par.get("dataLocal") is None:
        errs.append(FieldError(f"{pp}.dataLocal", "Invalid value", None, "dataLocal must be set when data is set"))
    if par.get("dataLocal") is not None and par.get("data") is None:
        errs.append(FieldError(f"{pp}.data", "Invalid value", None, "data must be set when dataLocal is set"))
    for key, what in (("pipeline", "pipeline parallelism"), ("data", "data parallelism"),
                      ("dataLocal", "dataLocal parallelism")):
        if par.get(key) is not None and par[key] <= 0:
            errs.append(FieldError(f"{pp}.{key}", "Invalid value", par[key], f"{what} must be greater than 0"))
    return errs


def parallelism_size(par: Mapping[str, Any] | None) -> int:
    """ParallelismSpec.GetSize, dereferenced with default 1: data/dataLocal, else pipeline, else 1."""
    if not par:
        return 1
    if _is_dp(par):
        return max(max(par.get("data") or 1, 1) // max(par.get("dataLocal") or 1, 1), 1)
    if _is_pp(par):
        return int(par["pipeline"])
    return 1


def immutable_errors(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldError]:
    """validateImmutable: the total parallelism size of ``spec`` (and ``spec.prefill`` if both have one)."""
    pairs = [("spec", old, new)]
    if old.get("prefill") is not None and new.get("prefill") is not None:
        pairs.append(("spec.prefill", old["prefill"], new["prefill"]))
    errs = []
    for base, before, after in pairs:
        p_size, c_size = parallelism_size(before.get("parallelism")), parallelism_size(after.get("parallelism"))
        if p_size != c_size:
            errs.append(FieldError(f"{base}.parallelism", "Unsupported value", c_size,
                                   f"total parallelism size is immutable, previous size {p_size}, curr size {c_size}"))
    return errs


def validate(obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[FieldError]:
    """Every rule, in the validator's order: router, parallelism (spec, spec.prefill), immutability."""
    spec = obj.get("spec") or {}
    errs = router_errors(spec) + workload_errors("spec", spec)
    if spec.get("prefill") is not None:
        errs += workload_errors("spec.prefill", spec["prefill"])
    if old is not None:
        errs += immutable_errors(old.get("spec") or {}, spec)
    return errs


def invalid_message(name: str, errs: list[FieldError]) -> str:
    """apierrors.NewInvalid's message: one error bare, several as ``[e1, e2]`` (utilerrors aggregate)."""
    texts = list(dict.fromkeys(str(e) for e in errs))
    body = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return f'{KIND}.{GROUP} "{name}" is invalid: {body}'


def _admit(request: AdmissionRequest) -> str | None:
    errs = validate(request.object, request.old_object if request.operation == "UPDATE" else None)
    if errs:
        raise denied(WEBHOOK, invalid_message(request.name, errs), code=422, reason="Invalid")
    return None


class LLMInferenceServiceValidator:
    """A lab component: KServe's validating webhook, registered with the store while the lab runs."""

    name = "llmisvc-validator"

    def __init__(self) -> None:
        self._unregister: Callable[[], None] | None = None

    async def start(self, ctx: LabContext) -> None:
        self._unregister = ctx.store.register_validating_webhook(ValidatingWebhook(
            name=WEBHOOK, group=GROUP, kinds=frozenset({KIND}), validate=_admit))

    async def stop(self) -> None:
        if self._unregister is not None:
            self._unregister()
            self._unregister = None
