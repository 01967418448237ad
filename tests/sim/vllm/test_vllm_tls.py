"""``vllm serve --ssl-certfile/--ssl-keyfile`` as KServe's preset runs it (config/llmisvc/config-llm-template.yaml
@ rhoai-3.0): HTTPS with the self-signed workload certificate; plain HTTP to the port fails; an unreadable or
invalid certificate fails start-up."""

from __future__ import annotations

import httpx
import pytest
from vllm_helpers import free_port

from llmd_lab.sim.tls import self_signed_pem
from llmd_lab.sim.vllm.server import StartupError, serve

pytestmark = pytest.mark.anyio
CERT, KEY = "/var/run/kserve/tls/tls.crt", "/var/run/kserve/tls/tls.key"
ARGV = ["vllm", "serve", "/mnt/models", "--served-model-name", "Qwen/Qwen3-0.6B", "--port", "8000",
        "--disable-log-requests", "--enable-ssl-refresh", "--ssl-certfile", CERT, "--ssl-keyfile", KEY]
ENV = {"LLMD_LAB_GPU_PRODUCT": "NVIDIA-L4", "LLMD_LAB_GPU_COUNT": "1", "LLMD_LAB_TIME_SCALE": "100000",
       "LLMD_LAB_MODEL_URI": "hf://Qwen/Qwen3-0.6B"}


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _mounted(files: dict[str, bytes]):
    def read_file(path: str) -> bytes:
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return files[path]
    return read_file


async def test_serves_https_with_the_mounted_certificate_and_refuses_plain_http():
    cert, key = self_signed_pem()
    port = free_port()
    lines: list[str] = []
    replica = await serve(ARGV, host="127.0.0.1", port=port, env=ENV, log=lines.append,
                          read_file=_mounted({CERT: cert, KEY: key}))
    try:
        assert replica.url == f"https://127.0.0.1:{port}"
        async with httpx.AsyncClient(verify=False) as insecure:  # the certificate verifies nowhere (no SANs)
            assert (await insecure.get(f"{replica.url}/health")).status_code == 200
        async with httpx.AsyncClient() as verifying:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await verifying.get(f"{replica.url}/health")
        async with httpx.AsyncClient() as plain:  # uvicorn with TLS drops a plain-HTTP request unanswered
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://127.0.0.1:{port}/health")
    finally:
        await replica.stop()


@pytest.mark.parametrize(("files", "error"), [({}, "FileNotFoundError"),
                                              ({CERT: b"not a certificate\n", KEY: b"nor a key\n"}, "ssl.SSLError")])
async def test_an_unreadable_or_invalid_certificate_fails_start_up(files, error):
    lines: list[str] = []
    with pytest.raises(StartupError, match=error):
        await serve(ARGV, host="127.0.0.1", port=free_port(), env=ENV, log=lines.append, read_file=_mounted(files))
    assert any(error in line for line in lines)
