"""The KServe storage-initializer as a simulated program: it "downloads" ``hf://`` weights into /mnt/models.

Mirrors red-hat-data-services/kserve@rhoai-3.0: ``python/storage-initializer/scripts/initializer-entrypoint``
(logs its args, calls ``Storage.download``) and ``python/kserve/kserve/storage/storage.py`` (``download``,
``_download_hf`` → huggingface_hub 0.36 ``snapshot_download`` with the token from ``HF_TOKEN``). What a cluster
shows is what the learner sees here: the kserve logger's lines, a gated repository without a token failing with
huggingface_hub's ``GatedRepoError`` (exit 1, so the pod goes Init:Error then Init:CrashLoopBackOff), and a
download that takes the weights' size over the profile's bandwidth (``LLMD_LAB_MODEL_DOWNLOAD_MBPS``, MB/s,
divided by the lab's time scale).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from llmd_lab.kserve import hf
from llmd_lab.sim.vllm.profiles import UnknownProfileError, resolve_model

DOWNLOAD_MBPS_ENV = "LLMD_LAB_MODEL_DOWNLOAD_MBPS"
_HF_PREFIX = "hf://"


class InitializerExitError(Exception):
    """The entrypoint exited with ``code`` (an uncaught Python exception exits 1)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _line(where: str, message: str, level: str = "INFO") -> str:
    """kserve/logging.py KSERVE_LOGGER_FORMAT: ``%(asctime)s.%(msecs)03d %(process)s %(name)s %(levelname)s
    [%(filename)s:%(funcName)s():%(lineno)s] %(message)s`` (PID 1 in a container)."""
    now = datetime.now(UTC)
    return f"{now:%Y-%m-%d %H:%M:%S}.{now.microsecond // 1000:03d} 1 kserve {level} [{where}] {message}"


def _hf_repo(uri: str) -> str:
    """``_download_hf``'s checks and their ValueError wording; the repo id it passes to snapshot_download."""
    components = uri[len(_HF_PREFIX):].split("/")
    if len(components) != 2:
        raise ValueError("URI must contain exactly one '/' separating the repo and model name")
    repo, model_part = components
    if not repo:
        raise ValueError("Repository name cannot be empty")
    model = model_part.partition(":")[0]
    if not model:
        raise ValueError("Model name cannot be empty")
    return f"{repo}/{model}"


def gated_repo_error(repo_id: str) -> str:
    """huggingface_hub's GatedRepoError text (utils/_http.py ``hf_raise_for_status`` + ``_format``: status line
    with the request id, the client's sentence, the Hub's X-Error-Message). Upstream's url carries the resolved
    commit sha where the lab writes ``main``."""
    request_id = f"Root=1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
    return (f"401 Client Error. (Request ID: {request_id})\n\n"
            f"Cannot access gated repo for url https://huggingface.co/{repo_id}/resolve/main/.gitattributes.\n"
            f"Access to model {repo_id} is restricted. You must have access to it and be authenticated to "
            "access it. Please log in.")


def _traceback(exc_type: str, message: str) -> list[str]:
    return ["Traceback (most recent call last):",
            '  File "/storage-initializer/scripts/initializer-entrypoint", line 17, in <module>',
            "    Storage.download(src_uri, dest_path)",
            *f"{exc_type}: {message}".splitlines()]


def download_seconds(uri: str, mbps: float) -> float:
    """Simulated seconds to pull the model's weights at ``mbps`` MB/s (0: no bandwidth stated, instant;
    a model the simulator does not know has no size, so it is instant too)."""
    if mbps <= 0:
        return 0.0
    try:
        size = resolve_model(uri).weight_bytes
    except UnknownProfileError:
        return 0.0
    return size / (mbps * 1e6)


async def run(argv: list[str], env: Mapping[str, str], log: Callable[[str], None]) -> None:
    """``initializer-entrypoint src_uri dest_path``: returns when the model is in place, raises
    :class:`InitializerExitError` when the process would exit non-zero."""
    if len(argv) != 2:
        log("Usage: initializer-entrypoint src_uri dest_path")
        return  # upstream calls sys.exit() here: exit 0 with nothing downloaded
    uri, dest = argv
    log(_line("initializer-entrypoint:<module>():16",
              f"Initializing, args: src_uri [{uri}] dest_path[ [{dest}]"))
    start = time.monotonic()
    log(_line("storage.py:download():64", f"Copying contents of {uri} to local"))
    if uri.startswith(_HF_PREFIX):
        try:
            repo = _hf_repo(uri)
        except ValueError as exc:
            for line in _traceback("ValueError", str(exc)):
                log(line)
            raise InitializerExitError(1, f"ValueError: {exc}") from None
        if hf.is_gated(repo) and not env.get("HF_TOKEN"):
            text = gated_repo_error(repo)
            for line in _traceback("huggingface_hub.errors.GatedRepoError", text):
                log(line)
            raise InitializerExitError(1, "GatedRepoError: " + text.splitlines()[0])
    mbps = float(env.get(DOWNLOAD_MBPS_ENV) or 0)
    scale = float(env.get("LLMD_LAB_TIME_SCALE") or 1) or 1.0
    await asyncio.sleep(download_seconds(uri, mbps) / scale)
    log(_line("storage.py:download():110", f"Successfully copied {uri} to {dest}"))
    log(_line("storage.py:download():111",
              f"Model downloaded in {(time.monotonic() - start) * scale} seconds."))
