"""llmd_lab: run llm-d workshop notebooks against OpenShift AI or the embedded local lab.

The public helpers (``connect``, ``manifests``, ``preflight``, ``deploy``, ``traffic``, ``metrics``,
``viz``, ``planner``) talk to Kubernetes through the official client and to models over HTTP, so the
same call works on a real cluster and on the local lab. ``llmd_lab.lab`` (API server, controller,
kubelet) and ``llmd_lab.sim`` (simulated vLLM, endpoint picker, gateway) are the lab's internals; the
public helpers never import them (an import-linter contract in pyproject.toml enforces this).
"""

__version__ = "0.1.0"
