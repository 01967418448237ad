"""The EPP process: flags as KServe passes them, the datastore, the scraper and three listeners.

* ``--grpc-port`` (9002): an HTTP stand-in for Envoy's ext-proc stream. ``POST /extproc/request`` with
  ``{"headers": {...}, "body": {...}}`` answers ``{"set_headers": {...}, "remove_headers": [...]}`` (incl.
  ``x-gateway-destination-endpoint: ip:port``) or, for a refused request, the immediate response's status
  and JSON body with header ``x-epp-immediate-response: true``. ``POST /extproc/response`` with
  ``{"request_id", "headers"}`` runs the PostResponse plugins and returns the headers to add. The same
  :class:`ExtProcService` is registered in ``llmd_lab.sim.extproc`` under ``host:grpc-port``, so a gateway
  in this process and event loop calls it without the HTTP round trips (same decision, same traces).
* ``--grpc-health-port`` (9003): ``SERVING`` once the InferencePool is known.
* ``--metrics-port`` (9090): ``/metrics`` and ``/debug/traces[/<request-id>]`` (also on 9002).
* ZMQ SUB bound at the precise scorer's ``zmqEndpoint`` (``*`` → the pod IP) for vLLM KV events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from llmd_lab._tasks import cancel_and_wait
from llmd_lab.sim.epp.config import LoadedConfig, load_config
from llmd_lab.sim.epp.configs import GIE_DEFAULT_CONFIG
from llmd_lab.sim.epp.datastore import Datastore
from llmd_lab.sim.epp.director import Director, EppError, SaturationDetector, TraceStore
from llmd_lab.sim.epp.flags import Options, parse_flags
from llmd_lab.sim.epp.metrics import EppMetrics
from llmd_lab.sim.epp.plugins.base import PluginHandle
from llmd_lab.sim.epp.plugins.precise_prefix import PrecisePrefixCacheScorer
from llmd_lab.sim.epp.plugins.prefix import PrefixCacheScorer
from llmd_lab.sim.epp.scraper import MetricNames, Scraper
from llmd_lab.sim.epp.tokenizers import HFTokenizers
from llmd_lab.sim.extproc import IMMEDIATE_RESPONSE_HEADER, RequestVerdict
from llmd_lab.sim.extproc import register as register_extproc
from llmd_lab.sim.extproc import unregister as unregister_extproc
from llmd_lab.sim.http import RunningServer, start_server
from llmd_lab.sim.source import ResourceSource


def _as_logger(log: Any) -> logging.Logger:
    if isinstance(log, logging.Logger):
        return log
    logger = logging.getLogger(f"llmd_lab.sim.epp.{id(log):x}")
    if callable(log) and not logger.handlers:
        class _Forward(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                log(self.format(record))
        handler = _Forward()
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


@dataclass
class EppHandle:
    """A running EPP: its parts (for tests and the lab) and ``stop()``."""

    options: Options
    config: LoadedConfig
    datastore: Datastore
    director: Director
    scraper: Scraper
    metrics: EppMetrics
    servers: dict[str, RunningServer]
    host: str
    log: logging.Logger
    extproc: ExtProcService | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _zmq: Any = None

    @property
    def ports(self) -> dict[str, int]:
        return {name: s.port for name, s in self.servers.items()}

    def url(self, listener: str = "grpc") -> str:
        return f"http://{self.host}:{self.servers[listener].port}"

    async def stop(self) -> None:
        if self.extproc is not None and "grpc" in self.servers:
            unregister_extproc(self.host, self.servers["grpc"].port, self.extproc)
        await cancel_and_wait(self._tasks, swallow_errors=True)
        if self._zmq is not None:
            self._zmq.close(linger=0)
        await self.scraper.stop()
        await self.datastore.stop()
        for server in self.servers.values():
            await server.stop()


def _debug_routes(traces: TraceStore) -> list[Route]:
    async def recent(request: Request) -> Response:
        n = int(request.query_params.get("limit", "50"))
        return JSONResponse({"traces": [t.to_dict() for t in traces.recent(n)]})

    async def one(request: Request) -> Response:
        trace = traces.get(request.path_params["request_id"])
        if trace is None:
            return JSONResponse({"error": f"no trace for request id {request.path_params['request_id']!r} "
                                          f"(the EPP keeps the last {traces.capacity})"}, status_code=404)
        return JSONResponse(trace.to_dict())

    return [Route("/debug/traces", recent), Route("/debug/traces/{request_id:path}", one)]


class ExtProcService:
    """The EPP's ext-proc logic, shared by its HTTP endpoints and the in-process path (``sim.extproc``)."""

    def __init__(self, director: Director, metrics: EppMetrics, log: logging.Logger) -> None:
        self.director = director
        self.metrics = metrics
        self.log = log
        self.started: dict[str, tuple[float, str, str]] = {}  # request id → (start, model, target model)

    def process_request(self, headers: Mapping[str, str], body: Any, body_size: int) -> RequestVerdict:
        try:
            if body is None:
                raise EppError("BadRequest", "request body is missing")
            decision = self.director.handle_request(headers, body)
        except EppError as exc:
            self.log.info("request refused: %s %s", exc.status, exc.message)
            return RequestVerdict({}, [], "", exc.status, exc.body())
        except LookupError as exc:  # pool without a single target port
            err = EppError("BadRequest", str(exc))
            return RequestVerdict({}, [], "", err.status, err.body())
        request = decision.request
        self.metrics.request_sizes.labels(request.body.get("model", ""), request.target_model).observe(body_size)
        self.started[request.request_id] = (time.monotonic(), str(request.body.get("model", "")),
                                             request.target_model)
        while len(self.started) > 10_000:
            self.started.pop(next(iter(self.started)))
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("request %s -> %s", request.request_id,
                           decision.headers.get("x-gateway-destination-endpoint"))
        return RequestVerdict(decision.headers, decision.remove_headers, request.request_id)

    def process_response(self, request_id: str, headers: Mapping[str, str]) -> dict[str, str]:
        return self.director.handle_response(request_id, headers)

    def process_completion(self, request_id: str, response_size: int) -> None:
        """End of the response body: ``inference_model_request_duration_seconds`` and the response size, as
        GIE v1.0.0 records them at end-of-stream (``handlers/server.go``)."""
        started = self.started.pop(request_id, None)
        if started is None:
            return
        began, model, target = started
        self.metrics.record_duration(model, target, time.monotonic() - began)
        self.metrics.response_sizes.labels(model, target).observe(response_size)


def _extproc_app(service: ExtProcService) -> Starlette:
    async def on_request(request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "ext-proc payload must be JSON"}, status_code=400)
        body = payload.get("body")
        size = payload.get("body_size")
        if not isinstance(size, int):
            size = len(json.dumps(body)) if body is not None else 0
        verdict = service.process_request(payload.get("headers") or {}, body, size)
        if verdict.immediate_status is not None:
            return JSONResponse(verdict.immediate_body, status_code=verdict.immediate_status,
                                headers={IMMEDIATE_RESPONSE_HEADER: "true"})
        return JSONResponse(verdict.to_json())

    async def on_response(request: Request) -> Response:
        payload = await request.json()
        out = service.process_response(str(payload.get("request_id", "")), payload.get("headers") or {})
        return JSONResponse({"set_headers": out})

    async def on_complete(request: Request) -> Response:
        payload = await request.json()
        size = payload.get("response_size")
        service.process_completion(str(payload.get("request_id", "")), size if isinstance(size, int) else 0)
        return JSONResponse({})

    routes = [Route("/extproc/request", on_request, methods=["POST"]),
              Route("/extproc/response", on_response, methods=["POST"]),
              Route("/extproc/complete", on_complete, methods=["POST"]),
              *_debug_routes(service.director.traces)]
    return Starlette(routes=routes)


async def _zmq_loop(socket: Any, scorers: list[PrecisePrefixCacheScorer], log: logging.Logger) -> None:
    while True:
        frames = await socket.recv_multipart()
        if len(frames) != 3:
            log.warning("dropping KV event message with %d frames (want topic, seq, payload)", len(frames))
            continue
        topic, _seq, payload = frames
        for scorer in scorers:
            try:
                scorer.handle_message(topic.decode(), payload)
            except (ValueError, TypeError, IndexError) as exc:
                log.warning("bad KV event on %r: %s", topic, exc)


async def serve(
    argv: Sequence[str],
    *,
    host: str,
    env: Mapping[str, str] | None = None,
    source: ResourceSource,
    log: logging.Logger | Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    seed: int | None = None,
    model_servers_tls: bool = False,
) -> EppHandle:
    """Start the EPP on ``host``; raise (with the reason logged) if the flags or the config are bad.

    ``model_servers_tls``: whether the pods really serve HTTPS. On a cluster they do (KServe's certificate),
    and so do the lab's (its kubelet mounts the certificate) and the mini cluster's: both pass True and
    ``--model-server-metrics-scheme`` decides. False is for plain-HTTP test pods only: the EPP then scrapes
    over HTTP whatever the flag says (logged)."""
    logger = _as_logger(log)
    env = dict(env or {})
    try:
        opts = parse_flags(argv)
        if opts.config_file:
            text = Path(opts.config_file).read_text()
        else:
            text = opts.config_text or GIE_DEFAULT_CONFIG
        datastore = Datastore(source, opts.pool_name, opts.pool_namespace, opts.pool_group, logger)
        metrics = EppMetrics(opts.pool_name, datastore.candidates, clock, opts.metrics_staleness_threshold)
        tokenizers = HFTokenizers(env, logger)  # by Hugging Face id, for the precise scorer
        handle = PluginHandle(clock=clock, rng=random.Random(seed), tokenizer_for=tokenizers.tokenizer_for, env=env,
                              observer=metrics)
        config = load_config(text, handle)
    except Exception as exc:
        logger.error("failed to start the endpoint picker: %s", exc)
        raise
    logger.info("loaded EndpointPickerConfig with plugins %s", ", ".join(f"{n} ({p.type_name})"
                                                                       for n, p in config.plugins.items()))
    for plugin in config.plugins.values():
        if isinstance(plugin, PrefixCacheScorer):
            metrics.prefix_indexers.append(plugin.indexer.size)
    director = Director(config, datastore.candidates, target_port=datastore.port, clock=clock,
                        objective_priority=datastore.objective_priority,
                        saturation=SaturationDetector(), observer=metrics)
    names = MetricNames(total_queued_requests=opts.total_queued_requests_metric,
                        kv_cache_usage_percentage=opts.kv_cache_usage_percentage_metric,
                        lora_info=opts.lora_info_metric)
    scheme = opts.model_server_metrics_scheme
    if scheme == "https" and not model_servers_tls:
        logger.info("the lab's model servers speak plain HTTP (no mounted certificate); scraping over http")
        scheme = "http"
    scraper = Scraper(datastore.candidates, names, interval=opts.refresh_metrics_interval,
                      port=opts.model_server_metrics_port, path=opts.model_server_metrics_path, scheme=scheme,
                      insecure_skip_verify=opts.model_server_metrics_https_insecure_skip_verify, clock=clock, log=logger)
    await datastore.start()
    servers: dict[str, RunningServer] = {}
    handle_obj = EppHandle(opts, config, datastore, director, scraper, metrics, servers, host, logger)
    try:
        extproc = ExtProcService(director, metrics, logger)
        servers["grpc"] = await start_server(_extproc_app(extproc), host, opts.grpc_port, name="epp-extproc")
        handle_obj.extproc = extproc
        register_extproc(host, servers["grpc"].port, extproc)

        async def health(request: Request) -> Response:
            if datastore.pool_synced():
                return PlainTextResponse("SERVING")
            return PlainTextResponse("NOT_SERVING", status_code=503)

        servers["health"] = await start_server(
            Starlette(routes=[Route("/", health), Route("/healthz", health), Route("/readyz", health)]),
            host, opts.grpc_health_port, name="epp-health")

        async def render(request: Request) -> Response:
            return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

        servers["metrics"] = await start_server(
            Starlette(routes=[Route("/metrics", render), *_debug_routes(director.traces)]),
            host, opts.metrics_port, name="epp-metrics")
        precise = [p for p in config.plugins.values() if isinstance(p, PrecisePrefixCacheScorer)]
        if precise:
            import zmq
            import zmq.asyncio

            endpoint = precise[0].zmq_endpoint.replace("*", host)
            sock = zmq.asyncio.Context.instance().socket(zmq.SUB)
            sock.setsockopt_string(zmq.SUBSCRIBE, precise[0].topic_filter)
            sock.bind(endpoint)
            handle_obj._zmq = sock
            handle_obj._tasks.append(asyncio.create_task(_zmq_loop(sock, precise, logger), name="epp-kv-events"))
            logger.info("listening for KV events on %s (topic prefix %r)", endpoint, precise[0].topic_filter)
    except BaseException:
        await handle_obj.stop()
        raise
    scraper.start()
    logger.info("endpoint picker serving pool %s/%s on %s (ext-proc %d, health %d, metrics %d)",
                opts.pool_namespace, opts.pool_name, host, servers["grpc"].port, servers["health"].port,
                servers["metrics"].port)
    return handle_obj
