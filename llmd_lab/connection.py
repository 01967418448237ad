"""Pick the world the notebook talks to, say which one it is, who you are there and what you may do.

``connect()`` tries, in order:

1. a kubeconfig: ``kubeconfig=``, ``$KUBECONFIG`` or ``~/.kube/config`` (current context unless
   ``context=`` is given). In a workbench terminal ``oc login`` writes ``~/.kube/config``, and an
   attendee who logged in means *that* identity, so it wins over the pod's own account;
2. the in-cluster service account (an OpenShift AI workbench: ``KUBERNETES_SERVICE_HOST`` and the token
   mounted under ``/var/run/secrets/kubernetes.io/serviceaccount``);
3. the local lab: attach if ``$LLMD_LAB_HOME/lab.json`` names a live process, else start it with the
   ``llmd-lab up`` command (a subprocess — the library never imports the lab) when ``start_lab``.

The result is a :class:`Connection`: the official ``kubernetes`` API clients, the namespace, who you are
(SelfSubjectReview) with a short can-i summary (SelfSubjectAccessReview), and where we are (OpenShift /
Kubernetes / llmd-lab, with versions). Nothing here prints a token or kubeconfig contents. Failures are
:class:`ConnectError` subclasses with a sentence saying what to do.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader
from kubernetes.dynamic import DynamicClient

from llmd_lab import access

_DISCOVERY_DIR: tempfile.TemporaryDirectory[str] | None = None


def _discovery_cache_file() -> str:
    """A new file in a private directory of this process, removed when the process ends."""
    global _DISCOVERY_DIR
    if _DISCOVERY_DIR is None:
        _DISCOVERY_DIR = tempfile.TemporaryDirectory(prefix="llmd-lab-discovery-")
    handle, path = tempfile.mkstemp(suffix=".json", dir=_DISCOVERY_DIR.name)
    os.close(handle)
    os.unlink(path)  # the Discoverer fetches when the file is absent, then writes it
    return path


SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
LAB_CLUSTER_NAME = "llmd-lab"
LAB_START_TIMEOUT_S = 120


class ConnectError(RuntimeError):
    """No usable cluster; the message lists what was tried and what to do."""


class ClusterUnreachableError(ConnectError):
    """The API server did not answer."""


class UnauthorizedError(ConnectError):
    """The API server answered 401: the token is expired or wrong."""


class NamespaceForbiddenError(ConnectError):
    """The user cannot work in the requested namespace (403)."""


def lab_home() -> Path:
    """``$LLMD_LAB_HOME`` or ``~/.llmd-lab`` (the same rule as ``llmd-lab``)."""
    return Path(os.environ.get("LLMD_LAB_HOME") or Path.home() / ".llmd-lab").expanduser()


def running_lab(home: Path | None = None) -> dict | None:
    """The running lab's ``lab.json`` (pid, port, gateway port, profile…) if its process is alive."""
    path = (home or lab_home()) / "lab.json"
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (FileNotFoundError, ValueError, KeyError, ProcessLookupError, json.JSONDecodeError):
        return None
    except PermissionError:
        pass  # alive, owned by someone else
    return info


def _llmd_lab_command() -> list[str]:
    exe = Path(sys.executable).with_name("llmd-lab")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("llmd-lab")
    return [found] if found else [sys.executable, "-m", "llmd_lab.cli"]


def launch_lab(
    home: Path | None = None, *, profile: str | None = None, timeout_s: float = LAB_START_TIMEOUT_S
) -> dict:
    """Run ``llmd-lab up`` (it returns once the API answers) and return the lab's ``lab.json``."""
    env = dict(os.environ)
    if home is not None:
        env["LLMD_LAB_HOME"] = str(home)
    cmd = [*_llmd_lab_command(), "up"] + (["--profile", profile] if profile else [])
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ClusterUnreachableError(
            f"`llmd-lab up` did not finish in {timeout_s:.0f}s; see {lab_home()}/lab.log"
        ) from exc
    info = running_lab(home)
    if proc.returncode != 0 or info is None:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        raise ClusterUnreachableError("`llmd-lab up` failed:\n  " + "\n  ".join(tail))
    return info


@dataclass
class Connection:
    """A connection to one cluster (real or the lab) and one namespace.

    Attributes: ``api`` (``kubernetes.client.ApiClient``), ``core``, ``apps``, ``custom``,
    ``dynamic`` (API clients), ``namespace``, ``user``, ``kind`` ("OpenShift", "Kubernetes" or
    "llmd-lab"), ``version`` (Kubernetes ``gitVersion``), ``platform_version`` (OpenShift version if
    known), ``server`` (API URL), ``source`` (how we found it), ``lab`` (``lab.json`` when local),
    ``identity`` (groups and the can-i summary; ``is_cluster_admin`` tells the instructor apart).
    """

    api: client.ApiClient
    namespace: str
    source: str
    server: str
    user: str = "?"
    kind: str = "Kubernetes"
    version: str = "?"
    platform_version: str | None = None
    lab: dict | None = None
    identity: access.Identity = field(default_factory=access.Identity)

    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @cached_property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @cached_property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @cached_property
    def dynamic(self) -> DynamicClient:
        """Discovery is this connection's own. The client's default cache is ``/tmp/osrcp-<md5 of the
        server URL>.json``, shared by every process and kept across servers: a lab started later on the same
        port (another profile) or a CRD removed since then would still be "served" from it, so preflight
        would pass a check the server fails."""
        return DynamicClient(self.api, cache_file=_discovery_cache_file())

    def bearer_token(self) -> str | None:
        """The token the client sends (for Thanos or an auth-enabled model). Never shown in summaries."""
        auth = self.api.configuration.api_key.get("authorization") or self.api.configuration.api_key.get(
            "BearerToken"
        )
        if auth:
            return auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else auth
        return None

    @property
    def is_cluster_admin(self) -> bool:
        """True for the instructor (any verb on anything): preflight then runs every cluster-wide check."""
        return self.identity.cluster_admin

    @property
    def is_lab(self) -> bool:
        """True when connected to the local lab (for display only; helpers behave the same)."""
        return self.kind == "llmd-lab"

    def summary(self) -> str:
        """One screen of plain text: where, who, which namespace, versions."""
        lines = [
            f"cluster   : {self.kind}" + (f" {self.platform_version}" if self.platform_version else ""),
            f"kubernetes: {self.version}",
            f"server    : {self.server}",
            f"via       : {self.source}",
            f"user      : {self.user}",
            f"namespace : {self.namespace}",
            f"can-i     : {self.identity.can_i_summary()}",
        ]
        if self.lab:
            lines.append(f"lab       : profile {self.lab.get('profile')}, gateway port {self.lab.get('gateway_port')}, "
                         f"time scale {self.lab.get('time_scale')}")  # fmt: skip
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Connection {self.kind} {self.server} ns={self.namespace} user={self.user}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, _, v in (line.partition(": ") for line in self.summary().splitlines())
        )
        return f"<table>{rows}</table>"


def _classify(exc: Exception, server: str, namespace: str | None = None) -> ConnectError:
    if isinstance(exc, ApiException):
        if exc.status == 401:
            return UnauthorizedError(
                f"{server} answered 401 Unauthorized: your token has expired or is wrong. Log in again "
                "(`oc login`, or restart the workbench) and reconnect."
            )
        if exc.status == 403 and namespace:
            return NamespaceForbiddenError(
                f"you cannot work in namespace {namespace!r} on {server} (403 Forbidden): pick a project you "
                "own (`oc projects`) or ask an admin for the edit role there."
            )
        return ConnectError(f"{server} answered {exc.status} {exc.reason}")
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return ClusterUnreachableError(
            f"TLS to {server} failed: its certificate is not trusted. The kubeconfig needs the cluster's CA "
            "(certificate-authority-data); re-run `oc login` or fetch a fresh kubeconfig."
        )
    return ClusterUnreachableError(
        f"no answer from the Kubernetes API at {server} ({type(exc).__name__}): check the URL/VPN, or use the "
        "local lab with connect(prefer_lab=True)."
    )


def _build(
    api: client.ApiClient, namespace: str, source: str, lab: dict | None, check_namespace: bool
) -> Connection:
    server = api.configuration.host
    conn = Connection(api=api, namespace=namespace, source=source, server=server, lab=lab)
    try:
        info = client.VersionApi(api).get_code(_request_timeout=10)
        conn.version = info.git_version
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise _classify(exc, server) from None
    conn.identity = access.identity(api, namespace)
    conn.user = conn.identity.username
    conn.kind, conn.platform_version = _platform(api)
    if lab is not None:
        conn.kind = "llmd-lab"
    if check_namespace:
        try:
            try:
                conn.core.read_namespace(namespace, _request_timeout=10)
            except ApiException as exc:
                if exc.status != 403:
                    raise
                # users may not read Namespace objects; listing pods there tells access apart
                conn.core.list_namespaced_pod(namespace, limit=1, _request_timeout=10)
        except ApiException as exc:
            if exc.status == 404:
                raise NamespaceForbiddenError(f"namespace {namespace!r} does not exist on {server}: create it "
                                         f"(`oc new-project {namespace}`) or pick another") from None  # fmt: skip
            raise _classify(exc, server, namespace) from None
    return conn


def _platform(api: client.ApiClient) -> tuple[str, str | None]:
    try:
        groups = {g.name for g in client.ApisApi(api).get_api_versions(_request_timeout=10).groups}
    except ApiException:
        return "Kubernetes", None
    if "config.openshift.io" not in groups:
        return "Kubernetes", None
    try:
        cv = client.CustomObjectsApi(api).get_cluster_custom_object(
            "config.openshift.io", "v1", "clusterversions", "version"
        )
        return "OpenShift", (cv.get("status", {}).get("desired", {}) or {}).get("version")
    except ApiException:
        return "OpenShift", None


def _kubeconfig_path(kubeconfig: str | Path | None) -> Path:
    """The kubeconfig ``oc``/``kubectl`` would read: the argument, the first ``$KUBECONFIG`` entry, or
    ``~/.kube/config`` (where ``oc login`` writes)."""
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(kubeconfig or first or Path.home() / ".kube/config").expanduser()


def _from_kubeconfig(path: Path, namespace: str | None, context: str | None, check_namespace: bool) -> Connection:
    try:
        contexts, active = config.list_kube_config_contexts(str(path))
        ctx = next((c for c in contexts if c["name"] == context), None) if context else active
        if ctx is None:
            raise ConnectError(f"context {context!r} not in {path}: use one of {[c['name'] for c in contexts]}")
        cfg = client.Configuration()
        config.load_kube_config(str(path), context=ctx["name"], client_configuration=cfg)
    except ConfigException as exc:
        raise ConnectError(f"kubeconfig {path} is not usable: {exc}") from None
    ns = namespace or ctx["context"].get("namespace") or "default"
    lab = None
    if ctx["context"].get("cluster") == LAB_CLUSTER_NAME:
        # the lab's own kubeconfig sits in its home; an identity's in <home>/kubeconfigs/
        lab = running_lab(path.parent) or running_lab(path.parent.parent) or running_lab()
    return _build(client.ApiClient(cfg), ns, f"kubeconfig {path} (context {ctx['name']})", lab, check_namespace)


def _in_cluster(namespace: str | None, check_namespace: bool) -> Connection:
    """What client-go's ``rest.InClusterConfig`` reads: the service host/port variables and SA_DIR's
    token, CA and namespace (SA_DIR is read at call time, so it is the one place that names the path)."""
    cfg = client.Configuration()
    try:
        InClusterConfigLoader(token_filename=str(SA_DIR / "token"), cert_filename=str(SA_DIR / "ca.crt"),
                              try_refresh_token=True).load_and_set(cfg)  # fmt: skip
    except ConfigException as exc:
        raise ConnectError(f"the workbench's service account is not usable: {exc}") from None
    ns = namespace or (SA_DIR / "namespace").read_text().strip()
    return _build(client.ApiClient(cfg), ns, "in-cluster service account (the workbench's)", None, check_namespace)


def _from_lab(namespace: str | None, start_lab: bool, tried: list[str], check_namespace: bool) -> Connection:
    home = lab_home()
    info = running_lab(home)
    if info is None:
        if not start_lab:
            raise ClusterUnreachableError(
                "no cluster found and the local lab is not running; tried: " + "; ".join(tried)
                + ". Start it with `llmd-lab up` or call connect(start_lab=True)."
            )  # fmt: skip
        info = launch_lab(home)
    cfg = client.Configuration()
    config.load_kube_config(str(home / "kubeconfig"), client_configuration=cfg)
    _, active = config.list_kube_config_contexts(str(home / "kubeconfig"))
    ns = namespace or active["context"].get("namespace") or "default"
    return _build(client.ApiClient(cfg), ns, f"local lab ({home})", info, check_namespace)


def connect(
    namespace: str | None = None,
    *,
    allow_lab: bool = True,
    start_lab: bool = True,
    prefer_lab: bool = False,
    kubeconfig: str | Path | None = None,
    context: str | None = None,
    check_namespace: bool = True,
) -> Connection:
    """Connect as you: your kubeconfig (``oc login``), else the workbench's service account, else the lab.

    Args:
        namespace: the project to work in; default: the context's or the service account's namespace.
        allow_lab: fall back to the local lab when no cluster config is found.
        start_lab: start the lab (``llmd-lab up``) if it is not running.
        prefer_lab: skip kubeconfig/in-cluster and use the lab directly.
        kubeconfig, context: a specific kubeconfig file / context instead of the defaults.
        check_namespace: verify the namespace exists and is readable (raises :class:`NamespaceForbiddenError`).
    """
    tried: list[str] = []
    if not prefer_lab:
        path = _kubeconfig_path(kubeconfig)
        if path.exists():
            return _from_kubeconfig(path, namespace, context, check_namespace)
        if kubeconfig is not None:
            raise ConnectError(f"kubeconfig {path} does not exist")
        tried.append(f"kubeconfig ({path} not found)")
        if os.environ.get("KUBERNETES_SERVICE_HOST") and (SA_DIR / "token").exists():
            return _in_cluster(namespace, check_namespace)
        tried.append("in-cluster service account (not in a pod)")
    if not allow_lab:
        raise ConnectError(
            "no cluster found; tried: " + "; ".join(tried) + ". Log in with `oc login` or allow the lab."
        )
    return _from_lab(namespace, start_lab, tried, check_namespace)
