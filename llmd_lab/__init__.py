"""llmd_lab: run llm-d workshop notebooks against OpenShift AI or the embedded local lab.

The public helpers (``connect``, ``manifests``, ``preflight``, ``deploy``, ``traffic``, ``metrics``,
``viz``, ``planner``) talk to Kubernetes through the official client and to models over HTTP, so the
same call works on a real cluster and on the local lab. ``llmd_lab.lab`` (API server, controller,
kubelet) and ``llmd_lab.sim`` (simulated vLLM, endpoint picker, gateway) are the lab's internals; the
public helpers never import them (an import-linter contract in pyproject.toml enforces this).
"""

__version__ = "0.1.0"

# Public helpers, imported on first use so `import llmd_lab` stays cheap for the lab process and CLI.
_LAZY = {
    # `connect` is the function (there is no `llmd_lab.connect` module to shadow it).
    "connect": ("llmd_lab.connection", "connect"),
    "connection": ("llmd_lab.connection", None),
    "Connection": ("llmd_lab.connection", "Connection"),
    "ConnectError": ("llmd_lab.connection", "ConnectError"),
    "manifests": ("llmd_lab.manifests", None),
    "preflight": ("llmd_lab.preflight", None),
    "deploy": ("llmd_lab.deploy", None),
    "doctor": ("llmd_lab.doctor", None),
    "traffic": ("llmd_lab.traffic", None),
    "metrics": ("llmd_lab.metrics", None),
    "viz": ("llmd_lab.viz", None),
    "planner": ("llmd_lab.planner", None),
    "k8s": ("llmd_lab.k8s", None),
    "access": ("llmd_lab.access", None),
    "settings": ("llmd_lab.settings", None),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return getattr(mod, attr) if attr else mod
    raise AttributeError(f"module 'llmd_lab' has no attribute {name!r}")
