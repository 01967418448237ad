"""PersistentVolumeClaim volumes on the lab's nodes: the kubelet's volume manager waits until each claim the
pod mounts is Bound (kubernetes 1.32 ``pkg/kubelet/volumemanager/populator/desired_state_of_world_populator.go``:
a claim that is missing, or not Bound to a volume, keeps the pod in ContainerCreating with ``FailedMount``),
then a container sees the volume at its ``mountPath``.

The lab's "disk" of a volume is a directory under the lab's home, ``volumes/<pv name>``, shared by every pod
that mounts the claim and kept until the volume is deleted; a program the kubelet runs (GuideLLM) writes
there what it writes under the mount path, so a second Job mounting the same claim reads it back.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.kubelet.volumes import MountError


class ClaimNotReadyError(MountError):
    """A claim the pod mounts is missing or not yet Bound (message after the kubelet's populator)."""

    def __init__(self, volume: str, message: str) -> None:
        Exception.__init__(self, message)
        self.volume = volume


def volume_dir(home: Path, pv_name: str) -> Path:
    return home / "volumes" / pv_name


async def _bound_volume(store: Store, namespace: str, volume: Mapping[str, Any]) -> str | None:
    """The PersistentVolume name behind one pod volume (None for other volume kinds)."""
    source = volume.get("persistentVolumeClaim")
    if not isinstance(source, dict):
        return None
    name = source.get("claimName", "")
    try:
        claim = await store.get("v1", "PersistentVolumeClaim", name, namespace)
    except ApiError as exc:
        if exc.code != 404:
            raise
        raise ClaimNotReadyError(volume.get("name", ""), f'error processing PVC {namespace}/{name}: '
                                 f'persistentvolumeclaim "{name}" not found') from None
    phase = (claim.get("status") or {}).get("phase", "")
    pv_name = (claim.get("spec") or {}).get("volumeName", "")
    if phase != "Bound" or not pv_name:
        raise ClaimNotReadyError(volume.get("name", ""), f"error processing PVC {namespace}/{name}: PVC "
                                 f"{namespace}/{name} has non-bound phase ({phase!r}) or empty "
                                 f"pvc.Spec.VolumeName ({pv_name!r})")
    return pv_name


async def check_claims(store: Store, pod: Mapping[str, Any]) -> None:
    """Raise :class:`ClaimNotReadyError` for the first claim of the pod that is not Bound."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        await _bound_volume(store, namespace, volume)


async def container_mounts(store: Store, home: Path, pod: Mapping[str, Any],
                           container: Mapping[str, Any]) -> dict[str, Path]:
    """mountPath → the lab directory of each claim the container mounts (``subPath`` included)."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name"))
        try:
            pv_name = await _bound_volume(store, namespace, volume) if volume else None
        except ClaimNotReadyError:
            continue
        if pv_name is None:
            continue
        host = volume_dir(home, pv_name) / (mount.get("subPath") or "")
        host.mkdir(parents=True, exist_ok=True)
        mounts[posixpath.normpath(mount.get("mountPath", "/"))] = host
    return mounts
