"""Validating admission for the lab's store: what a ``ValidatingWebhookConfiguration`` does on a cluster.

Operators install webhooks that may refuse a write (RHOAI's Kueue label check, say). In the lab those
webhooks are components registering a :class:`ValidatingWebhook` with the store: a rule (API group, kinds,
operations, subresources) and a ``validate`` callable. The store calls every matching webhook after its own
validation and before it commits, for dry-run requests too (the webhooks here have ``sideEffects: None``),
so a denied request changes nothing. A denial reads exactly as kube-apiserver words one
(``admission webhook "<name>" denied the request: <message>``, 403 Forbidden as controller-runtime's
``admission.Denied`` answers), because that text is what users paste into a search box.

Webhooks run synchronously inside the store's write (the store never awaits mid-change); they may read the
store through its synchronous ``get_raw``/``list_raw`` but must not write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from llmd_lab.lab.apiserver.errors import ApiError

CREATE, UPDATE = "CREATE", "UPDATE"
OPERATIONS = (CREATE, UPDATE)


@dataclass(frozen=True)
class AdmissionRequest:
    """One write as a webhook sees it (``AdmissionReview.request``); never mutate the objects."""

    operation: str  # CREATE | UPDATE (a patch is an UPDATE, as in Kubernetes)
    group: str
    version: str
    kind: str
    name: str
    namespace: str | None
    object: dict  # the object as it would be stored
    old_object: dict | None = None  # the stored object (UPDATE)
    subresource: str = ""  # "", "status" or "scale"
    dry_run: bool = False


Validate = Callable[[AdmissionRequest], "str | None"]
"""Return ``None`` to allow, or the denial message; raise :class:`ApiError` for any other answer."""


@dataclass(frozen=True)
class ValidatingWebhook:
    """One webhook of a ``ValidatingWebhookConfiguration``: its name and the requests it is sent."""

    name: str  # e.g. "kserve-llmisvc-kueuelabels-validator.opendatahub.io"
    group: str  # API group ("" for core)
    kinds: frozenset[str]  # kinds in that group ("*" for all)
    validate: Validate
    operations: frozenset[str] = frozenset(OPERATIONS)
    subresources: frozenset[str] = frozenset({""})  # "" is the object itself; "status" must be asked for

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a webhook needs a name (it appears in every denial message)")
        unknown = set(self.operations) - set(OPERATIONS)
        if unknown or not self.operations:
            raise ValueError(f"webhook {self.name}: operations must be a non-empty subset of {OPERATIONS}, "
                             f"got {sorted(self.operations)}")
        if not self.kinds:
            raise ValueError(f"webhook {self.name}: kinds must name at least one kind (or '*')")

    def matches(self, request: AdmissionRequest) -> bool:
        return (
            request.group == self.group
            and ("*" in self.kinds or request.kind in self.kinds)
            and request.operation in self.operations
            and request.subresource in self.subresources
        )


def denied(webhook: str, message: str, *, code: int = 403, reason: str = "Forbidden") -> ApiError:
    """The error kube-apiserver returns when webhook ``webhook`` refuses a request with ``message``.

    403/Forbidden is what controller-runtime's ``admission.Denied`` puts in the response; codes below 400
    become 400, as kube-apiserver does for a rejection.
    """
    code = code if code >= 400 else 400
    text = f'admission webhook "{webhook}" denied the request'
    return ApiError(code, reason, f"{text}: {message}" if message else f"{text} without explanation")


@dataclass
class AdmissionChain:
    """The store's registered validating webhooks, called in registration order (first denial wins)."""

    webhooks: list[ValidatingWebhook] = field(default_factory=list)

    def register(self, webhook: ValidatingWebhook) -> Callable[[], None]:
        """Add ``webhook``; returns a function that removes it again (a component calls it in ``stop()``)."""
        if any(w.name == webhook.name for w in self.webhooks):
            raise ValueError(f"a validating webhook named {webhook.name!r} is already registered")
        self.webhooks.append(webhook)

        def unregister() -> None:
            if webhook in self.webhooks:
                self.webhooks.remove(webhook)

        return unregister

    def matching(self, request: AdmissionRequest) -> Iterable[ValidatingWebhook]:
        return [w for w in self.webhooks if w.matches(request)]

    def admit(self, request: AdmissionRequest) -> None:
        """Raise the denial of the first matching webhook that refuses ``request``."""
        for webhook in self.matching(request):
            message = webhook.validate(request)
            if message is not None:
                raise denied(webhook.name, message)
