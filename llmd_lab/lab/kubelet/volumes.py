"""The files a container sees in its Secret and ConfigMap volumes, as the kubelet projects them.

KServe mounts its workload certificate (``<name>-kserve-self-signed-certs``) at ``/var/run/kserve/tls`` and
vLLM reads ``tls.crt``/``tls.key`` from there; the kubelet is what turns the Secret into those files
(kubernetes ``pkg/volume/secret/secret.go``, ``pkg/volume/configmap/configmap.go``: one file per key, or
per ``items`` entry at its ``path``; a missing object fails the mount unless ``optional``). The files live in
memory: a simulated program reads them with the ``read_file`` this module builds.
"""

from __future__ import annotations

import base64
import errno
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store

ReadFile = Callable[[str], bytes]


class MountError(Exception):
    """A volume could not be set up: the kubelet's ``FailedMount`` event; the pod waits and retries."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.volume = volume


def _object_files(kind: str, obj: Mapping[str, Any]) -> dict[str, bytes]:
    """Key → bytes of a Secret (``data`` is base64) or a ConfigMap (``data`` text, ``binaryData`` base64)."""
    files: dict[str, bytes] = {}
    if kind == "Secret":
        for key, value in (obj.get("data") or {}).items():
            files[key] = base64.b64decode(value or "")
        for key, value in (obj.get("stringData") or {}).items():  # normally folded into data by the API
            files[key] = str(value).encode()
        return files
    for key, value in (obj.get("data") or {}).items():
        files[key] = str(value).encode()
    for key, value in (obj.get("binaryData") or {}).items():
        files[key] = base64.b64decode(value or "")
    return files


def _projected(volume: str, source: Mapping[str, Any], keys: dict[str, bytes], kind: str, name: str,
               ) -> dict[str, bytes]:
    """Relative path → bytes: every key, or only ``items`` (a missing item key fails the mount)."""
    items = source.get("items")
    if not items:
        return dict(keys)
    out: dict[str, bytes] = {}
    for item in items:
        key = item.get("key", "")
        if key not in keys:
            if source.get("optional"):
                continue
            raise MountError(volume, f'configmap references non-existent config key: {key}' if kind == "ConfigMap"
                             else f'references non-existent secret key: {key}')
        out[item.get("path") or key] = keys[key]
    return out


async def _volume_files(store: Store, namespace: str, volume: Mapping[str, Any]) -> dict[str, bytes] | None:
    """The files of one Secret/ConfigMap volume; None for kinds the lab does not project (emptyDir, …)."""
    name = volume.get("name", "")
    if "secret" in volume:
        kind, source = "Secret", volume["secret"] or {}
        obj_name = source.get("secretName", "")
    elif "configMap" in volume:
        kind, source = "ConfigMap", volume["configMap"] or {}
        obj_name = source.get("name", "")
    else:
        return None
    try:
        obj = await store.get("v1", kind, obj_name, namespace)
    except ApiError as exc:
        if exc.code != 404:
            raise
        if source.get("optional"):
            return {}
        raise MountError(name, f'{kind.lower()} "{obj_name}" not found') from None
    return _projected(name, source, _object_files(kind, obj), kind, obj_name)


async def container_files(store: Store, pod: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, bytes]:
    """Absolute path → bytes of every Secret/ConfigMap file mounted into ``container`` (``subPath`` too)."""
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    files: dict[str, bytes] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name"))
        if volume is None:
            continue
        projected = await _volume_files(store, namespace, volume)
        if projected is None:
            continue
        target = posixpath.normpath(mount.get("mountPath", "/"))
        sub = mount.get("subPath")
        if sub:
            if sub in projected:
                files[target] = projected[sub]
            continue
        for rel, data in projected.items():
            files[posixpath.join(target, rel)] = data
    return files


async def check_pod_volumes(store: Store, pod: Mapping[str, Any]) -> None:
    """Set up every Secret/ConfigMap volume of the pod once (before any container starts), as the kubelet's
    volume manager does; raises :class:`MountError` for the first that cannot be."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        await _volume_files(store, namespace, volume)


def reader(files: Mapping[str, bytes]) -> ReadFile:
    """``read_file(path)`` over ``files``; an absent path raises ``FileNotFoundError`` as ``open`` would."""
    snapshot = dict(files)

    def read_file(path: str) -> bytes:
        key = posixpath.normpath(path)
        if key not in snapshot:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return snapshot[key]

    return read_file
