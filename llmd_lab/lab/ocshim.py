"""``oc`` for the local lab: the notebooks' ``!oc …`` cells run unchanged where the real ``oc`` is absent.

OpenShift AI workbench images ship ``oc`` and not ``kubectl`` (opendatahub-io/notebooks
``jupyter/minimal/ubi9-python-3.12/Dockerfile.cpu``: "Install the oc client", which extracts only ``oc``), so
the notebooks' shell cells say ``oc``. ``oc`` is ``kubectl`` plus OpenShift verbs; this shim forwards every
kubectl verb (get, describe, logs, apply, delete, auth can-i, …) to ``kubectl`` unchanged, answers the two
OpenShift conveniences the notebooks use from the kubeconfig (``oc whoami`` through ``kubectl auth whoami``,
``oc project -q``), and refuses other OpenShift-only verbs (``adm``, ``new-project``, ``login``, ``rsh`` …)
with a message, instead of pretending. Where it differs from ``oc``: no OpenShift-only verbs, and the
output of ``oc whoami``/``oc project`` is the bare name only.

Installed by ``make lab`` (``python -m llmd_lab.lab.ocshim --install .venv/bin``) and by the notebook tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

KUBECTL_VERBS = {
    "get", "describe", "logs", "apply", "create", "delete", "edit", "patch", "label", "annotate", "scale",
    "rollout", "wait", "explain", "api-resources", "api-versions", "auth", "events", "top", "exec", "config",
    "version", "diff", "replace", "set", "port-forward", "cluster-info",
}  # fmt: skip
#: OpenShift-only verbs the shim refuses (with the kubectl way where there is one).
OPENSHIFT_ONLY = {
    "new-project": "the lab creates your project for you (`oc project -q` shows it)",
    "login": "the lab's kubeconfig already logs you in (`llmd-lab kubeconfig --user NAME`)",
    "adm": "cluster administration is the instructor's; in the lab use kubectl as the instructor",
    "rsh": "the lab's pods run no shell",
    "new-app": "not part of this workshop",
    "start-build": "not part of this workshop",
}


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        sys.exit("oc (llmd-lab shim): kubectl is not on PATH; install kubectl to use `oc` against the lab")
    return found


def _run(args: list[str]) -> int:
    return subprocess.call([_kubectl(), *args])


def main(argv: list[str] | None = None) -> int:
    """Run one ``oc`` command line against the current kubeconfig."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print("oc (llmd-lab shim): kubectl's verbs, plus `oc whoami [--show-server]` and `oc project [-q]`")
        return 0
    verb, rest = args[0], args[1:]
    if verb == "whoami":
        if "--show-server" in rest or "--show-console" in rest:
            return _run(["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}{'\\n'}"])
        return _run(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}{'\\n'}"])
    if verb == "project":
        if rest and not rest[0].startswith("-"):
            return _run(["config", "set-context", "--current", f"--namespace={rest[0]}"])
        return _run(["config", "view", "--minify", "-o", "jsonpath={..namespace}{'\\n'}"])
    if verb in OPENSHIFT_ONLY:
        print(f"oc {verb}: not provided by the llmd-lab oc shim: {OPENSHIFT_ONLY[verb]}", file=sys.stderr)
        return 2
    if verb not in KUBECTL_VERBS and not verb.startswith("-"):
        print(f"oc {verb}: not provided by the llmd-lab oc shim (it forwards kubectl's verbs only)", file=sys.stderr)
        return 2
    return _run(args)


def install(bin_dir: Path, python: str | None = None) -> Path:
    """Write an executable ``oc`` into ``bin_dir`` that runs this shim with ``python``; returns its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    target = bin_dir / "oc"
    target.write_text(f'#!/bin/sh\nexec "{python or sys.executable}" -m llmd_lab.lab.ocshim "$@"\n')
    target.chmod(0o755)
    return target


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--install":  # python -m llmd_lab.lab.ocshim --install BIN_DIR
        print(install(Path(sys.argv[2])))
        sys.exit(0)
    sys.exit(main())
