"""The EPP's command line, parsed like Go's ``flag`` package (GIE v1.0.0 ``cmd/epp/runner``).

``-name value``, ``--name value`` and ``--name=value`` all work; a bool flag alone means true and
only ``--name=false`` turns it off; an undefined flag is an error worded like Go's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmd_lab.sim.epp.plugins.base import parse_go_duration


class FlagError(ValueError):
    """Bad command line (the real binary prints usage and exits 2)."""


# name -> (kind, default, help)
FLAGS: dict[str, tuple[str, Any, str]] = {
    "pool-name": ("str", "", "Name of the InferencePool this Endpoint Picker is associated with."),
    "pool-namespace": ("str", "default", "Namespace of the InferencePool."),
    "pool-group": ("str", "inference.networking.k8s.io", "Kubernetes resource group of the InferencePool."),
    "config-file": ("str", "", "The path to the configuration file."),
    "config-text": ("str", "", "The configuration specified as text, in lieu of a file."),
    "grpc-port": ("int", 9002, "The gRPC port used for communicating with Envoy proxy."),
    "grpc-health-port": ("int", 9003, "The port used for gRPC liveness and readiness probes."),
    "metrics-port": ("int", 9090, "The metrics port."),
    "enable-pprof": ("bool", True, "Enables pprof handlers."),
    "destination-endpoint-hint-metadata-namespace": ("str", "envoy.lb", "Metadata namespace for the endpoint hint."),
    "destination-endpoint-hint-key": ("str", "x-gateway-destination-endpoint", "Header/metadata key of the hint."),
    "refresh-metrics-interval": ("duration", 0.05, "Interval to refresh metrics."),
    "refresh-prometheus-metrics-interval": ("duration", 5.0, "Interval to flush prometheus metrics."),
    "metrics-staleness-threshold": ("duration", 2.0, "Duration after which metrics are considered stale."),
    "secure-serving": ("bool", True, "Enables secure serving (the lab serves plain HTTP)."),
    "health-checking": ("bool", False, "Enables health checking."),
    "cert-path": ("str", "", "The path to the certificate for secure serving."),
    "total-queued-requests-metric": ("str", "vllm:num_requests_waiting", "Prometheus metric for queued requests."),
    "kv-cache-usage-percentage-metric": ("str", "vllm:gpu_cache_usage_perc", "Prometheus metric for KV-cache usage."),
    "lora-info-metric": ("str", "vllm:lora_requests_info", "Prometheus metric for the LoRA info metrics."),
    "model-server-metrics-port": ("int", 0, "Port to scrape metrics from pods (0: the pool's target port)."),
    "model-server-metrics-path": ("str", "/metrics", "Path to scrape metrics from pods."),
    "model-server-metrics-scheme": ("str", "http", "Scheme to scrape metrics from pods."),
    "model-server-metrics-https-insecure-skip-verify": ("bool", True, "Skip TLS verification when scraping."),
    "ha-enable-leader-election": ("bool", False, "Enables leader election for high availability."),
    "v": ("int", 0, "number for the log level verbosity"),
    "zap-devel": ("bool", False, "Development mode defaults."),
    "zap-encoder": ("str", "", "Zap log encoding (one of 'json' or 'console')."),
    "zap-log-level": ("str", "", "Zap level to configure the verbosity of logging."),
    "zap-stacktrace-level": ("str", "", "Zap level at and above which stacktraces are captured."),
    "zap-time-encoding": ("str", "", "Zap time encoding."),
}


@dataclass
class Options:
    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        key = name.replace("_", "-")
        if key in self.values:
            return self.values[key]
        raise AttributeError(name)


def _convert(name: str, kind: str, text: str) -> Any:
    try:
        if kind == "int":
            return int(text, 0)
        if kind == "bool":
            lowered = text.lower()
            if lowered in {"1", "t", "true"}:
                return True
            if lowered in {"0", "f", "false"}:
                return False
            raise ValueError(text)
        if kind == "duration":
            return parse_go_duration(text)
    except ValueError:
        raise FlagError(f'invalid value "{text}" for flag -{name}: parse error') from None
    return text


def parse_flags(argv: Sequence[str]) -> Options:
    """Parse ``argv`` (without the program name); raise :class:`FlagError` like Go's flag package."""
    values = {name: default for name, (_, default, _) in FLAGS.items()}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg in {"-", "--"}:
            if arg == "--":
                break
            break  # Go stops at the first non-flag argument
        name = arg.lstrip("-")
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name not in FLAGS:
            raise FlagError(f"flag provided but not defined: -{name}")
        kind = FLAGS[name][0]
        if value is None:
            if kind == "bool":
                value = "true"
            else:
                if i + 1 >= len(args):
                    raise FlagError(f"flag needs an argument: -{name}")
                i += 1
                value = args[i]
        values[name] = _convert(name, kind, value)
        i += 1
    opts = Options(values)
    if not opts.pool_name:
        raise FlagError("required flag --pool-name is not set")
    if opts.config_file and opts.config_text:
        raise FlagError("--config-file and --config-text are mutually exclusive")
    return opts
