"""``llmd-lab workbench``: run a command (JupyterLab) the way an OpenShift AI workbench pod runs it.

A workbench pod sees its service account the in-cluster way: ``KUBERNETES_SERVICE_HOST``/``_PORT`` and
``token``, ``ca.crt``, ``namespace`` under ``/var/run/secrets/kubernetes.io/serviceaccount``, no
``KUBECONFIG``, and a home directory of its own. The lab gives the command exactly that, in a private mount
namespace (``unshare --mount`` as root, ``unshare --user --map-root-user --mount`` otherwise) with the
project's workbench files bind-mounted at that path, so the public library's in-cluster code path runs
unchanged and nothing outside the command sees the mount.

The workbench's service account has only what RHOAI gives it (see ``users.py``), so attendees log in as
themselves in the workbench terminal (``oc login``), which writes ``~/.kube/config``. ``--login`` (the
default of ``make lab``) does that step for the attendee: their kubeconfig is in the workbench home.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from llmd_lab.lab import users
from llmd_lab.lab.home import LabPaths, write_private

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# runs inside the new mount namespace: make the mount point, bind the project's files there, become the command
_SCRIPT = 'set -e\nmkdir -p "$1" 2>/dev/null || true\nmount --bind "$2" "$1"\nshift 2\nexec "$@"\n'


class WorkbenchError(RuntimeError):
    """The workbench cannot start; the message says what to do."""


@dataclass(frozen=True)
class Workbench:
    """The files and environment of one attendee's workbench."""

    attendee: str
    sa_dir: Path
    home: Path
    env: dict[str, str]


def _lab_info(paths: LabPaths) -> dict:
    try:
        return json.loads(paths.lab_json.read_text())
    except FileNotFoundError:
        raise WorkbenchError("the lab is not running: start it with `llmd-lab up` first") from None


def _identity(paths: LabPaths, attendee: str, attendees: int) -> users.LabIdentity:
    wanted = users.workbench_username(attendee)
    for identity in users.lab_identities(paths, attendees):
        if identity.name == wanted:
            return identity
    raise WorkbenchError(f"no workbench for {attendee!r}")


def prepare(paths: LabPaths, attendee: str = "user1", *, login: bool = True) -> Workbench:
    """Write the workbench's service-account files (token 0600) and home; return its environment."""
    names = users.known_names(paths)
    if attendee not in names or not attendee.startswith("user"):
        raise WorkbenchError(f"no attendee {attendee!r} in this lab (start it with `llmd-lab up --attendees N`)")
    info = _lab_info(paths)
    attendees = sum(1 for n in names if n.startswith("user"))
    identity = _identity(paths, attendee, attendees)
    root = paths.home / "workbench" / attendee
    sa_dir, home = root / "serviceaccount", root / "home"
    for directory in (root, sa_dir, home):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(sa_dir / "token", identity.token)
    write_private(sa_dir / "namespace", attendee)
    shutil.copyfile(info["ca_file"], sa_dir / "ca.crt")
    kube_dir = home / ".kube"
    if login:
        kube_dir.mkdir(mode=0o700, exist_ok=True)
        write_private(kube_dir / "config", users.kubeconfig_path(paths, attendee).read_text())
    elif (kube_dir / "config").exists():
        (kube_dir / "config").unlink()
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(info["port"]),
                "KUBERNETES_SERVICE_PORT_HTTPS": str(info["port"]), "HOME": str(home),
                "NB_PREFIX": f"/notebook/{attendee}/{users.WORKBENCH}"})
    return Workbench(attendee, sa_dir, home, env)


def unshare_argv(workbench: Workbench, command: list[str]) -> list[str]:
    """The command line that runs ``command`` in a private mount namespace with the files at ``SA_MOUNT``."""
    if not command:
        raise WorkbenchError("give the command to run in the workbench, e.g. `llmd-lab workbench -- jupyter lab`")
    unshare = shutil.which("unshare")
    if unshare is None:
        raise WorkbenchError("`unshare` (util-linux) is needed to run a workbench; install util-linux")
    flags = ["--mount", "--propagation", "private"] if os.geteuid() == 0 else \
        ["--user", "--map-root-user", "--mount", "--propagation", "private"]
    return [unshare, *flags, "--", "sh", "-c", _SCRIPT, "workbench", SA_MOUNT, str(workbench.sa_dir), *command]


def check_mount_point() -> None:
    """Without root, the mount point must already exist (a user namespace cannot create it on the host)."""
    if os.geteuid() != 0 and not Path(SA_MOUNT).is_dir():
        raise WorkbenchError(f"{SA_MOUNT} does not exist and only root can create it: run "
                             f"`sudo mkdir -p {SA_MOUNT}` once (it stays empty; the workbench mounts over it)")


def check_unshare(argv: list[str]) -> None:
    """Try the namespace flags once (``true`` in place of the command) so a refusal is a clear error."""
    probe = [*argv[:argv.index("--")], "--", "true"]
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        how = "as root" if os.geteuid() == 0 else "with user namespaces (unshare --user --map-root-user)"
        raise WorkbenchError(f"cannot make a private mount namespace {how}: {result.stderr.strip()}; the "
                             "workbench needs it to mount its service-account files (in a container, run it "
                             "with CAP_SYS_ADMIN or enable unprivileged user namespaces)")


def run(paths: LabPaths, command: list[str], attendee: str = "user1", *, login: bool = True) -> None:
    """Replace this process with ``command`` running inside the workbench (never returns on success)."""
    check_mount_point()
    workbench = prepare(paths, attendee, login=login)
    argv = unshare_argv(workbench, command)
    check_unshare(argv)
    os.execve(argv[0], argv, workbench.env)
