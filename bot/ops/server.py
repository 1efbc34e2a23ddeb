"""The operations endpoint (``ops.listen``): GET /healthz and GET /metrics on a small aiohttp server.

/healthz answers JSON, 200 when this process is fit to serve and 503 otherwise (starting, a platform
disconnected, the database unreachable, the scheduler stuck), for load balancers, orchestrators and systemd
watchdogs. /metrics answers Prometheus' text format; without prometheus_client (the ``metrics`` extra) it answers
501 saying what to install, and /healthz still works. Listens on 127.0.0.1 unless told otherwise: the figures are
counts, never message text or user ids, but they are nobody else's business either.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.core.ports import StartupError
from bot.ops.health import HEARTBEAT_SECONDS, Health

if TYPE_CHECKING:
    from bot.bootstrap import Runtime

log = logging.getLogger(__name__)

NO_METRICS = 'the metrics extra is not installed: pip install "runbot[metrics]"\n'


def make_metrics() -> Any:
    """A ``bot.ops.metrics.Metrics``, or None when prometheus_client is not installed."""
    try:
        from bot.ops.metrics import Metrics
    except ImportError:
        return None
    return Metrics()


class OpsServer:
    """Serves /healthz and /metrics for one running bot; ``start()`` also wires the metrics into the runtime."""

    def __init__(self, runtime: Runtime, host: str, port: int) -> None:
        self.runtime = runtime
        self.host, self.port = host, port
        self.health = Health(runtime)
        self.metrics = make_metrics()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; raises StartupError when the address cannot be bound."""
        rt = self.runtime
        if self.metrics is not None:
            rt.engine.telemetry = self.metrics
            rt.scheduler.telemetry = self.metrics
        else:
            log.warning("ops: /metrics is off (%s)", NO_METRICS.strip())
        rt.scheduler.max_sleep = min(rt.scheduler.max_sleep, HEARTBEAT_SECONDS)
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            reason = exc.strerror or exc
            raise StartupError(f"ops.listen: cannot listen on {self.host}:{self.port} ({reason})") from None
        self._runner = runner
        if self.port == 0:  # tests: the port the system chose
            server = site._server
            if server is not None:
                self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        log.info("ops: /healthz and /metrics on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        report = await self.health.check()
        status = HTTPStatus.OK if report.healthy else HTTPStatus.SERVICE_UNAVAILABLE
        return web.json_response(report.body, status=status)

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.metrics is None:
            return web.Response(status=HTTPStatus.NOT_IMPLEMENTED, text=NO_METRICS)
        from bot.ops.metrics import CONTENT_TYPE_LATEST

        await self.metrics.refresh(self.runtime, await self.health.check())
        response = web.Response(body=self.metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
