"""Thin helpers over the official ``kubernetes`` client, for objects given as plain dicts.

The dynamic client does the REST mapping (apiVersion + kind → URL) from the server's discovery, so the
same call works for core kinds and CRDs (LLMInferenceService, InferencePool, LeaderWorkerSet…) on any
cluster. Errors stay ``kubernetes.client.ApiException``; :func:`is_not_found` and friends read them.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from llmd_lab import access
from llmd_lab.connection import Connection

FIELD_MANAGER = "llmd-lab"


def resource(conn: Connection, api_version: str, kind: str) -> Any:
    """The dynamic client's resource for a kind; ``ResourceNotFoundError`` if the server lacks it."""
    return conn.dynamic.resources.get(api_version=api_version, kind=kind)


def has_kind(conn: Connection, api_version: str, kind: str) -> bool:
    """Whether the server serves this kind (its CRD is installed)."""
    try:
        resource(conn, api_version, kind)
        return True
    except ResourceNotFoundError:
        return False


def to_dict(obj: Any) -> dict:
    """A dynamic-client ``ResourceInstance`` (or a dict) as a plain dict."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


@access.explains_forbidden
def get(conn: Connection, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
    """The object as a dict, or None if it does not exist."""
    try:
        return to_dict(resource(conn, api_version, kind).get(name=name, namespace=namespace))
    except (NotFoundError, ResourceNotFoundError):
        return None
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


@access.explains_forbidden
def list_objects(
    conn: Connection, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
) -> list[dict]:
    """Objects of a kind (all namespaces when ``namespace`` is None); [] if the kind is not served."""
    try:
        res = resource(conn, api_version, kind)
    except ResourceNotFoundError:
        return []
    kw: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
    if res.namespaced and namespace:
        kw["namespace"] = namespace
    return [to_dict(i) for i in res.get(**kw).items]


@access.explains_forbidden
def apply(
    conn: Connection, obj: dict, *, namespace: str | None = None, dry_run: bool = False, force: bool = True
) -> dict:
    """Create or update ``obj`` with server-side apply (field manager ``llmd-lab``); returns the result.

    Server-side apply is what ``oc apply --server-side`` does: the server merges our fields and records
    us as their manager, so a re-run only changes what changed.
    """
    res = resource(conn, obj["apiVersion"], obj["kind"])
    ns = obj.get("metadata", {}).get("namespace") or namespace if res.namespaced else None
    body = dict(obj)
    if ns:
        body["metadata"] = {**obj.get("metadata", {}), "namespace": ns}
    kw: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force_conflicts": force}
    if dry_run:
        kw["dry_run"] = "All"
    return to_dict(res.server_side_apply(body=body, name=obj["metadata"]["name"], namespace=ns, **kw))


@access.explains_forbidden
def delete(conn: Connection, api_version: str, kind: str, name: str, namespace: str | None = None,
           propagation: str = "Foreground") -> bool:  # fmt: skip
    """Delete an object; False if it was already gone. Foreground: children go first."""
    try:
        resource(conn, api_version, kind).delete(
            name=name, namespace=namespace, body={"propagationPolicy": propagation}
        )
        return True
    except (NotFoundError, ResourceNotFoundError):
        return False


def watch(
    conn: Connection,
    api_version: str,
    kind: str,
    namespace: str | None = None,
    *,
    name: str | None = None,
    label_selector: str | None = None,
    timeout_s: float = 60,
) -> Iterator[tuple[str, dict]]:
    """Yield ``(event type, object dict)`` from a watch until ``timeout_s`` (the server ends the stream)."""
    res = resource(conn, api_version, kind)
    kw: dict[str, Any] = {"timeout": max(1, int(timeout_s))}
    if namespace and res.namespaced:
        kw["namespace"] = namespace
    if name:
        kw["field_selector"] = f"metadata.name={name}"
    if label_selector:
        kw["label_selector"] = label_selector
    try:
        for event in res.watch(**kw):
            yield event["type"], to_dict(event["object"])
    except ApiException as exc:
        raise access.explain(exc) from None


def events_for(conn: Connection, obj: dict, limit: int = 20) -> list[dict]:
    """Events about an object (newest last), as ``oc describe`` shows them."""
    meta = obj["metadata"]
    sel = f"involvedObject.name={meta['name']},involvedObject.kind={obj['kind']}"
    try:
        items = conn.core.list_namespaced_event(
            meta.get("namespace") or conn.namespace, field_selector=sel
        ).items
    except ApiException:
        return []
    items.sort(
        key=lambda e: (e.last_timestamp or e.event_time or e.metadata.creation_timestamp or 0).__str__()
    )
    return [
        {
            "type": e.type,
            "reason": e.reason,
            "message": e.message,
            "count": e.count,
            "source": getattr(e.source, "component", None),
        }
        for e in items[-limit:]
    ]


def pod_logs(conn: Connection, pod: str, namespace: str | None = None, *, container: str | None = None, tail: int = 20,
             previous: bool = False) -> str:  # fmt: skip
    """The last ``tail`` lines of a container's log ('' if unavailable)."""
    try:
        return conn.core.read_namespaced_pod_log(
            pod, namespace or conn.namespace, container=container, tail_lines=tail, previous=previous
        )
    except ApiException:
        return ""


def pods(conn: Connection, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
    """Pods as dicts (camelCase keys, as the API returns them)."""
    return list_objects(conn, "v1", "Pod", namespace or conn.namespace, label_selector)


@access.explains_forbidden
def service_url(
    conn: Connection,
    name: str,
    namespace: str | None = None,
    port: int | str | None = None,
    *,
    check_tls: bool = True,
) -> str:
    """``scheme://clusterIP:port`` of a Service; scheme from the port's appProtocol or name (https/http).

    A port declared https that answers in plain HTTP (the lab's simulated vLLM serves no TLS) gets
    ``http`` when ``check_tls``. A ClusterIP is reachable from inside the cluster (a workbench) and, in
    the lab, from the laptop.
    """
    svc = conn.core.read_namespaced_service(name, namespace or conn.namespace)
    ports = svc.spec.ports or []
    chosen = next((p for p in ports if port in (None, p.port, p.name)), None)
    if chosen is None:
        raise ValueError(f"service {name} has no port {port!r}; ports: {[(p.name, p.port) for p in ports]}")
    if svc.spec.cluster_ip in (None, "", "None"):
        raise ValueError(f"service {name} is headless (no clusterIP): address its pods directly")
    proto = (chosen.app_protocol or chosen.name or "").lower()
    scheme = "https" if proto.startswith("https") or chosen.port == 443 else "http"
    if scheme == "https" and check_tls and _speaks_plain_http(svc.spec.cluster_ip, chosen.port):
        scheme = "http"
    return f"{scheme}://{svc.spec.cluster_ip}:{chosen.port}"


def _speaks_plain_http(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a port declared https answers a TLS ClientHello with plain HTTP (a TLS-less backend,
    as in the lab). Unreachable hosts return False, so the declared scheme stands."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only asking "is this TLS at all?"; no data is sent
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, ctx.wrap_socket(raw):
            return False
    except ssl.SSLError as exc:
        return "WRONG_VERSION_NUMBER" in str(exc) or "record layer failure" in str(exc).lower()
    except OSError:
        return False


def can_i(conn: Connection, verb: str, resource_name: str, *, group: str = "", namespace: str | None = None,
          subresource: str | None = None) -> bool:  # fmt: skip
    """``oc auth can-i VERB RESOURCE[/SUB] [-n NS]``: one SelfSubjectAccessReview (cluster-wide without ``namespace``)."""
    perm = access.Permission(verb, resource_name, group, subresource, namespaced=namespace is not None)
    return access.access_review(conn.api, perm, namespace)


def wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.5) -> bool:
    """Poll ``predicate()`` until true or the deadline (for things with no watch, e.g. pod proxies)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


# ----------------------------------------------------------------------------------------------- namespaces
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PROJECT_REQUEST = ("project.openshift.io/v1", "ProjectRequest")


class NamespaceError(RuntimeError):
    """The namespace could not be created or used; the message says what to do."""


@access.explains_forbidden
def namespace_exists(conn: Connection, name: str) -> bool:
    """Whether ``name`` exists *for this user*: a readable Namespace, or (OpenShift) a Project they are in."""
    try:
        conn.core.read_namespace(name)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        if exc.status != 403:
            raise
    # Users may not read Namespace objects on OpenShift; their Projects they may.
    if not has_kind(conn, "project.openshift.io/v1", "Project"):
        return False
    try:
        return get(conn, "project.openshift.io/v1", "Project", name) is not None
    except ApiException as exc:
        if exc.status == 403:
            return False  # not a member (or it does not exist: OpenShift answers 403 for both)
        raise


def namespace_labels(conn: Connection, name: str) -> dict[str, str] | None:
    """The labels of namespace ``name``, read as the Namespace or (OpenShift, for a project member who may
    not read Namespaces) as the Project; None when neither is readable."""
    for api_version, kind in (("v1", "Namespace"), ("project.openshift.io/v1", "Project")):
        if kind == "Project" and not has_kind(conn, api_version, kind):
            continue
        try:
            obj = get(conn, api_version, kind, name)
        except ApiException as exc:
            if exc.status == 403:
                continue
            raise
        if obj is not None:
            return dict((obj.get("metadata") or {}).get("labels") or {})
    return None


def ensure_namespace(conn: Connection, name: str) -> bool:
    """Make sure namespace ``name`` exists; True if this call created it, False if it was already there.

    Where the server serves OpenShift's ``ProjectRequest`` the namespace is requested as a Project (what
    ``oc new-project`` does: regular users may create Projects, not Namespaces, and become its admin);
    elsewhere a plain ``Namespace`` is created. Raises :class:`NamespaceError` if the name is taken by a
    project you cannot use, or you may not create one.
    """
    if len(name) > 63 or not DNS1123_LABEL.match(name):
        raise ValueError(
            f"namespace name {name!r} is not valid: use at most 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    if namespace_exists(conn, name):
        return False
    try:
        if has_kind(conn, *PROJECT_REQUEST):
            body = {"apiVersion": PROJECT_REQUEST[0], "kind": PROJECT_REQUEST[1], "metadata": {"name": name}}
            resource(conn, *PROJECT_REQUEST).create(body=body)
        else:
            conn.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except ApiException as exc:
        if exc.status == 409:
            if namespace_exists(conn, name):
                return False  # someone created it between our check and our create
            raise NamespaceError(
                f"namespace {name!r} already exists but you cannot use it: pick another name, or ask its "
                "owner for the edit role there"
            ) from None
        if exc.status == 403:
            raise NamespaceError(
                f"you may not create namespace {name!r} (403 Forbidden): ask an admin to create it and give "
                "you the edit role, or use a project you already have (`oc projects`)"
            ) from None
        raise
    return True
