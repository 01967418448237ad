"""The create-only review kinds, answered by the authentication/authorization seam (access.py) and never
stored: TokenReview, SelfSubjectReview, SelfSubjectAccessReview, SelfSubjectRulesReview.

Upstream: kubernetes@v1.32 pkg/registry/authentication/tokenreview/storage.go,
pkg/registry/authentication/selfsubjectreview/rest.go, pkg/registry/authorization/selfsubjectaccessreview/rest.go,
pkg/apis/authorization/validation/validation.go (ValidateSelfSubjectAccessReviewSpec).
"""

from __future__ import annotations

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.access import Access, Attributes, UserInfo

REVIEW_KINDS = frozenset({"TokenReview", "SelfSubjectReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview"})


def answer(obj: dict, user: UserInfo, access: Access) -> dict:
    """Fill in the ``status`` of review ``obj`` made by ``user``; returns ``obj``."""
    obj.setdefault("metadata", {})
    obj["metadata"].setdefault("creationTimestamp", None)
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "SelfSubjectAccessReview":
        obj["status"] = _access_review(spec, user, access)
    elif kind == "SelfSubjectRulesReview":
        if not spec.get("namespace"):
            raise errors.bad_request("no namespace on request")
        obj["status"] = access.authorizer.rules_for(user, spec["namespace"])
    elif kind == "SelfSubjectReview":
        obj.pop("spec", None)
        obj["status"] = {"userInfo": user.to_api()}
    elif kind == "TokenReview":
        reviewed = access.authenticator.authenticate(spec.get("token") or "")
        obj["status"] = {"authenticated": reviewed is not None, "audiences": []}
        if reviewed is not None:
            obj["status"]["user"] = reviewed.to_api()
        else:
            obj["status"]["error"] = "the token is not one the API server knows"
    else:
        raise errors.method_not_allowed(f"{kind} is not a review kind")
    return obj


def _access_review(spec: dict, user: UserInfo, access: Access) -> dict:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if not resource and not non_resource:
        cause = errors.field_cause("spec.resourceAttributes", "Required value: exactly one of nonResourceAttributes "
                                   "or resourceAttributes must be specified", "FieldValueRequired")
    elif resource and non_resource:
        cause = errors.field_cause("spec.nonResourceAttributes", "Invalid value: cannot be specified in combination "
                                   "with resourceAttributes")
    else:
        if resource:
            attrs = Attributes(user, resource.get("verb", ""), resource.get("group", ""), resource.get("resource", ""),
                               resource.get("subresource", ""), resource.get("namespace", ""), resource.get("name", ""))
        else:
            attrs = Attributes(user, non_resource.get("verb", ""), path=non_resource.get("path", "") or "/")
        decision = access.authorizer.authorize(attrs)
        status = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return status
    raise errors.invalid("SelfSubjectAccessReview", "authorization.k8s.io", "", [cause])
