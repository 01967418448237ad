"""The lab's state directory (``$LLMD_LAB_HOME``, default ``~/.llmd-lab``): paths, the token, the kubeconfig.

Kept free of heavy imports so ``llmd-lab status``/``down``/``kubeconfig`` answer quickly.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmd_lab.lab.pki import LabPki

PROFILE_MARKER = "profile-installed"


@dataclass(frozen=True)
class LabPaths:
    """The files of one lab's state directory (see docs/architecture.md, "State directory")."""

    home: Path

    @property
    def kubeconfig(self) -> Path:
        return self.home / "kubeconfig"

    @property
    def token(self) -> Path:
        return self.home / "token"

    @property
    def lab_json(self) -> Path:
        return self.home / "lab.json"

    @property
    def state_db(self) -> Path:
        return self.home / "state.db"

    @property
    def log(self) -> Path:
        return self.home / "lab.log"

    @property
    def profile_marker(self) -> Path:
        return self.home / PROFILE_MARKER

    @property
    def pki(self) -> LabPki:
        from llmd_lab.lab.pki import LabPki  # cryptography is only needed by the server and TLS clients

        return LabPki(self.home / "pki")


def default_home() -> Path:
    """``$LLMD_LAB_HOME``, or ``~/.llmd-lab``."""
    return Path(os.environ.get("LLMD_LAB_HOME") or Path.home() / ".llmd-lab").expanduser()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically with mode 0600 (the file never exists with wider permissions)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def secure_home(paths: LabPaths) -> None:
    """Make the state directory 0700 and every state, log and key file in it 0600, creating ``state.db`` and
    ``lab.log`` empty (0600) when missing.

    ``state.db`` holds user Secrets and KServe's TLS private keys; SQLite creates ``-wal``/``-shm`` with the
    database file's permissions, so a 0600 ``state.db`` keeps them private too. Files left wider by an older
    lab are narrowed here, on every start.
    """
    paths.home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    os.chmod(paths.home, PRIVATE_DIR_MODE)
    for path in (paths.state_db, paths.log):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE))
    pki_dir = paths.home / "pki"
    if pki_dir.is_dir():
        os.chmod(pki_dir, PRIVATE_DIR_MODE)
    for path in [*paths.home.iterdir(), *(pki_dir.iterdir() if pki_dir.is_dir() else [])]:
        if path.is_file() and not path.is_symlink():
            os.chmod(path, PRIVATE_FILE_MODE)


def ensure_token(paths: LabPaths) -> str:
    """The lab's bearer token, created once (``secrets``) and kept across restarts so kubeconfigs stay valid."""
    paths.home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if paths.token.exists():
        token = paths.token.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    write_private(paths.token, token + "\n")
    return token


def kubeconfig_text(server: str, token: str, ca_data: str, namespace: str = "default") -> str:
    """A kubeconfig with one cluster/user/context named ``llmd-lab`` (the CA inline, so it is self-contained)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": "llmd-lab", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": "llmd-lab", "user": {"token": token}}],
        "contexts": [
            {"name": "llmd-lab", "context": {"cluster": "llmd-lab", "user": "llmd-lab", "namespace": namespace}}
        ],
        "current-context": "llmd-lab",
    }
    return json.dumps(config, indent=2) + "\n"  # JSON is YAML; kubectl and the client read it as such
