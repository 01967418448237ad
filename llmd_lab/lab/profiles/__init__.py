"""Cluster profiles: what the simulated OpenShift cluster has (nodes, operators, CRDs, gateway, queues).

A profile is a YAML file in this directory (pure data; adding one needs no code). ``load_profile`` reads and
checks it; ``Profile.objects()`` turns it into the API objects the lab creates at start-up, in dependency
order: namespaces, nodes, the OpenShift/OLM objects, the Gateway, then the included manifests (KServe
presets, Kueue queues…). Which CRDs are served is ``Profile.crds`` (names from ``llmd_lab/lab/crds``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmd_lab.lab.profiles.nodes import node_objects

PROFILE_DIR = Path(__file__).parent
DEFAULT_PROFILE = "rhoai-3.0"

_TOP_KEYS = {
    "name", "description", "openshift", "gateway", "nodeTypes", "nodes", "crds", "operators", "knownIssues", "include",
    "extends", "vllm", "modelDownload", "crdDir",
}
_VLLM_KEYS = {"image", "version", "source"}
_REQUIRED = ("name", "openshift", "nodeTypes", "nodes", "crds")
KNOWN_ISSUES = {
    # kserve's Gateway validation needs the AuthPolicy CRD unless security.opendatahub.io/enable-auth: "false"
    "authPolicyRequiredForGateway": True,
    # Envoy's TLS origination to the HTTPS backend fails: status.url answers 500, a passthrough Route works
    "gatewayTlsOriginationFails": False,
    # a Kueue webhook rejects LLMInferenceServices without the kueue.x-k8s.io/queue-name label
    "kueueRequiresQueueLabel": False,
}


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the field to fix."""


@dataclass(frozen=True)
class GatewaySpec:
    name: str
    namespace: str
    class_name: str
    protocol: str = "HTTP"


@dataclass
class Profile:
    """One cluster profile, checked. ``raw`` keeps the file's data for anything not modelled here."""

    name: str
    description: str
    path: Path
    openshift: dict[str, Any]
    node_types: dict[str, dict[str, Any]]
    nodes: list[dict[str, Any]]
    crds: list[str]
    operators: list[dict[str, Any]]
    gateway: GatewaySpec | None
    known_issues: dict[str, bool]
    manifests: list[dict[str, Any]] = field(default_factory=list)
    #: CRD definitions read from the profile's ``crdDir`` (a captured cluster's own schemas), by name.
    crd_files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def crd_objects(self) -> list[dict[str, Any]]:
        """The CRDs to serve: the profile's own definition where it has one, else the lab's (llmd_lab/lab/crds)."""
        from llmd_lab.lab import crds as crd_data

        return [copy.deepcopy(self.crd_files[n]) if n in self.crd_files else crd_data.load([n])[0] for n in self.crds]
    vllm: dict[str, str] = field(default_factory=dict)  # image, version, source: what the cluster's vLLM is
    # the storage-initializer's download rate from Hugging Face, MB/s (the kubelet times model pulls with it)
    model_download_mbps: float = 0.0

    def has_crd(self, name: str) -> bool:
        return name in self.crds

    def issue(self, name: str) -> bool:
        """Whether a known RHOAI issue is switched on in this profile."""
        if name not in KNOWN_ISSUES:
            raise KeyError(f"unknown known-issue {name!r}; known: {', '.join(sorted(KNOWN_ISSUES))}")
        return self.known_issues[name]

    def node_objects(self) -> list[dict[str, Any]]:
        return node_objects(self.node_types, self.nodes, self.openshift)

    def objects(self) -> list[dict[str, Any]]:
        """Every object the profile puts in the cluster, in creation order (namespaces first)."""
        objs: list[dict[str, Any]] = []
        namespaces: list[str] = []
        for op in self.operators:
            namespaces.append(op["namespace"])
        if self.gateway:
            namespaces.append(self.gateway.namespace)
        for m in self.manifests:
            ns = m.get("metadata", {}).get("namespace")
            if ns:
                namespaces.append(ns)
        explicit = {m["metadata"]["name"] for m in self.manifests if m.get("kind") == "Namespace"}
        for ns in dict.fromkeys(namespaces):
            if ns not in explicit:
                objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        objs.extend(m for m in self.manifests if m.get("kind") == "Namespace")
        objs.extend(self.node_objects())
        objs.append(self._cluster_version())
        objs.extend(self._csv(op) for op in self.operators)
        if self.gateway:
            objs.extend(self._gateway_objects(self.gateway))
        objs.extend(copy.deepcopy(m) for m in self.manifests if m.get("kind") != "Namespace")
        return objs

    # ---- generated objects
    def _cluster_version(self) -> dict[str, Any]:
        version = str(self.openshift["version"])
        return {
            "apiVersion": "config.openshift.io/v1",
            "kind": "ClusterVersion",
            "metadata": {"name": "version"},
            "spec": {"channel": self.openshift.get("channel", ""), "clusterID": f"lab-{self.name}"},
            "status": {
                "desired": {"version": version},
                "history": [{"state": "Completed", "version": version}],
                "conditions": [
                    {"type": "Available", "status": "True", "message": f"Done applying {version}"},
                    {"type": "Progressing", "status": "False",
                     "message": f"Cluster version is {version}"},
                ],
            },
        }

    @staticmethod
    def _csv(op: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "operators.coreos.com/v1alpha1",
            "kind": "ClusterServiceVersion",
            "metadata": {"name": op["name"], "namespace": op["namespace"]},
            "spec": {"displayName": op.get("displayName", op["name"]), "version": str(op.get("version", ""))},
            "status": {"phase": "Succeeded", "reason": "InstallSucceeded", "message": "install strategy completed with no errors"},
        }

    @staticmethod
    def _gateway_objects(gw: GatewaySpec) -> list[dict[str, Any]]:
        listener_port = 443 if gw.protocol == "HTTPS" else 80
        listener: dict[str, Any] = {
            "name": gw.protocol.lower(),
            "port": listener_port,
            "protocol": gw.protocol,
            "allowedRoutes": {"namespaces": {"from": "All"}},
        }
        if gw.protocol == "HTTPS":
            listener["tls"] = {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "default-gateway-tls"}]}
        return [
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "GatewayClass",
                "metadata": {"name": gw.class_name},
                "spec": {"controllerName": "openshift.io/gateway-controller/v1"},
                # what OpenShift's gateway controller (Istio) reports once it owns the class
                "status": {"conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": 1,
                     "message": "Handled by Istio controller", "lastTransitionTime": "2025-10-01T00:00:00Z"},
                ]},
            },
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": {"name": gw.name, "namespace": gw.namespace},
                "spec": {"gatewayClassName": gw.class_name, "listeners": [listener]},
            },
        ]


def available_profiles() -> list[str]:
    """Names accepted by ``llmd-lab up --profile``."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE) -> Profile:
    """Read a profile by name (a file in this directory) or by path; raise ProfileError saying what to fix."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and "/" not in str(name_or_path):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ProfileError(
                f"no cluster profile named {name_or_path!r}; choose one of: {', '.join(available_profiles())}"
            )
    return _parse(_read(path), path)


def _read(path: Path, seen: tuple[Path, ...] = ()) -> Any:
    """The profile's data, with ``extends: <profile>`` resolved: the base's keys, this file's keys on top
    (``knownIssues`` merged key by key), so a variant states only what differs."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc}") from exc
    if not isinstance(data, dict) or "extends" not in data:
        return data
    base_path = PROFILE_DIR / f"{data['extends']}.yaml"
    if base_path in (path, *seen) or not base_path.is_file():
        raise ProfileError(f"{path}: extends {data['extends']!r}: not another profile of {', '.join(available_profiles())}")
    base = _read(base_path, (*seen, path))
    merged = {**base, **{k: v for k, v in data.items() if k != "extends"}}
    merged["knownIssues"] = {**(base.get("knownIssues") or {}), **(data.get("knownIssues") or {})}
    return merged


def _known_issues(data: dict, where: str) -> dict[str, bool]:
    issues = dict(KNOWN_ISSUES)
    for key, value in (data.get("knownIssues") or {}).items():
        if key not in KNOWN_ISSUES:
            raise ProfileError(f"{where}: knownIssues.{key} is not a known issue; known: {sorted(KNOWN_ISSUES)}")
        issues[key] = bool(value)
    return issues


def _gateway(data: dict, where: str) -> GatewaySpec | None:
    if not data.get("gateway"):
        return None
    g = data["gateway"]
    try:
        gateway = GatewaySpec(g["name"], g["namespace"], g["className"], g.get("protocol", "HTTP"))
    except KeyError as exc:
        raise ProfileError(f"{where}: gateway needs name, namespace and className (missing {exc})") from exc
    if gateway.protocol not in ("HTTP", "HTTPS"):
        raise ProfileError(f"{where}: gateway.protocol must be HTTP or HTTPS, not {gateway.protocol!r}")
    return gateway


def _includes(data: dict, path: Path) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = []
    for rel in data.get("include") or []:
        inc = (path.parent / rel).resolve()
        try:
            docs = yaml.safe_load(inc.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ProfileError(f"{path}: include {rel!r}: {exc}") from exc
        if not isinstance(docs, list) or not all(isinstance(d, dict) and "kind" in d for d in docs):
            raise ProfileError(f"{path}: include {rel!r} must be a YAML list of Kubernetes objects")
        manifests.extend(docs)
    return manifests


def _download_mbps(data: dict, where: str) -> float:
    spec = data.get("modelDownload") or {}
    rate = spec.get("bandwidthMBps", 0) if isinstance(spec, dict) else None
    if not isinstance(rate, int | float) or rate < 0:
        raise ProfileError(f"{where}: modelDownload.bandwidthMBps must be a number ≥ 0 (MB/s), got {rate!r}")
    return float(rate)


def _parse(data: Any, path: Path) -> Profile:
    where = str(path)
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a profile is a mapping with keys {', '.join(sorted(_TOP_KEYS))}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ProfileError(f"{where}: missing required keys {missing}")
    node_types = data["nodeTypes"] or {}
    for i, group in enumerate(data["nodes"] or []):
        if group.get("type") not in node_types:
            raise ProfileError(
                f"{where}: nodes[{i}].type {group.get('type')!r} is not in nodeTypes ({', '.join(node_types)})"
            )
        if int(group.get("count", 1)) < 0:
            raise ProfileError(f"{where}: nodes[{i}].count must be >= 0")
    issues = _known_issues(data, where)
    gateway = _gateway(data, where)
    manifests = _includes(data, path)
    for op in data.get("operators") or []:
        if not {"name", "namespace"} <= set(op):
            raise ProfileError(f"{where}: each operator needs name and namespace, got {op!r}")
    crd_files = _crd_files(data, path)
    missing_crds = [n for n in data["crds"] or [] if n not in crd_files and n not in _shipped_crds()]
    if missing_crds:
        raise ProfileError(f"{where}: crds {missing_crds} are neither in llmd_lab/lab/crds nor in crdDir")
    vllm = data.get("vllm") or {}
    if not isinstance(vllm, dict) or set(vllm) - _VLLM_KEYS:
        raise ProfileError(f"{where}: vllm is a mapping with keys {sorted(_VLLM_KEYS)}, got {vllm!r}")
    return Profile(
        name=str(data["name"]),
        description=str(data.get("description", "")).strip(),
        path=path,
        openshift=dict(data["openshift"]),
        node_types=node_types,
        nodes=list(data["nodes"] or []),
        crds=list(data["crds"] or []),
        operators=list(data.get("operators") or []),
        gateway=gateway,
        known_issues=issues,
        manifests=manifests,
        crd_files=crd_files,
        vllm={k: str(v) for k, v in vllm.items()},
        model_download_mbps=_download_mbps(data, where),
    )


def _shipped_crds() -> set[str]:
    from llmd_lab.lab import crds as crd_data

    return set(crd_data.available())


def _crd_files(data: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """``crdDir``: one ``<plural>.<group>.yaml`` CRD per file, relative to the profile (written by capture)."""
    if not data.get("crdDir"):
        return {}
    crd_dir = (path.parent / str(data["crdDir"])).resolve()
    if not crd_dir.is_dir():
        raise ProfileError(f"{path}: crdDir {data['crdDir']!r} is not a directory next to the profile")
    out = {}
    for file in sorted(crd_dir.glob("*.yaml")):
        try:
            doc = yaml.safe_load(file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ProfileError(f"{path}: crdDir file {file.name}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition" \
                or doc.get("metadata", {}).get("name") != file.stem:
            raise ProfileError(f"{path}: {file.name} must be one CustomResourceDefinition named {file.stem!r}")
        out[file.stem] = doc
    return out
