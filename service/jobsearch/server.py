"""The HTTP protocol uvicorn speaks for us: httptools, with TCP_NODELAY on every connection.

asyncio turns TCP_NODELAY on only for sockets whose protocol field says TCP.
uvicorn creates its listening socket itself when it runs several workers (and
tests hand it ready sockets), with the protocol field left at 0, so accepted
connections keep Nagle's algorithm: a response written as headers, then body,
waits for the client's delayed ACK, about 40 ms on every kept-alive request.
(uvicorn issue #3149.) Setting the option per connection fixes every path.

On SIGTERM each worker drains before it stops (DrainingServer): /health turns
503 "draining" at once, requests are still served for DRAIN_SECONDS, then
uvicorn's graceful shutdown runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
import time
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import multiprocess

# After SIGTERM a worker keeps serving this long, /health answering 503, before
# it stops accepting. The proxy (Caddy) must stop sending to this replica first:
# it re-resolves `tasks.api` every 1 s (Swarm drops a stopping task from DNS) and
# health-checks /health every 1 s, so within about 2 s either tells it; 5 s
# leaves room for a slow round of both and for the supervisor's own delay
# (uvicorn forwards SIGTERM to the workers within 0.5 s).
DRAIN_SECONDS = 5
# Then in-flight requests get this long to finish. Drain plus this (25 s) stays
# under the stop grace period (stop_grace_period 30 s, see infra/topology.py),
# so they are never cut off by SIGKILL.
GRACEFUL_SHUTDOWN_SECONDS = 20

logger = logging.getLogger("uvicorn.error")

_draining = threading.Event()


def draining() -> bool:
    """True once this process has been told to stop: /health answers 503 from then on."""
    return _draining.is_set()


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]


HTTP_PROTOCOL = f"{__name__}:NoDelayHttpToolsProtocol"


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which on SIGTERM drains for DRAIN_SECONDS before shutting down.

    SIGTERM: draining() turns true (so /health answers 503) and requests are
    served as before; DRAIN_SECONDS later uvicorn's graceful shutdown starts
    (stop accepting, let in-flight requests finish, exit). A repeated SIGTERM
    changes nothing. SIGINT (Ctrl-C under `make run`) shuts down at once,
    during a drain too, as uvicorn does.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._drain_until: float | None = None
        self._drain_logged = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        _draining.set()
        if sig != signal.SIGTERM or self.should_exit:
            super().handle_exit(sig, frame)
            return
        if self._drain_until is None:
            # Recorded as uvicorn does, so that it re-raises the signal once shut down.
            self._captured_signals.append(sig)
            self._drain_until = time.monotonic() + DRAIN_SECONDS
            # A signal handler: no logging here (it may interrupt a log call holding
            # the handler's lock); on_tick logs it.

    async def on_tick(self, counter: int) -> bool:
        # uvicorn calls this every 0.1 s from its main loop, and stops once it is true.
        if self._drain_until is not None and not self.should_exit:
            if not self._drain_logged:
                self._drain_logged = True
                logger.info(
                    "Received SIGTERM; draining for %ss before shutting down", DRAIN_SECONDS
                )
            if time.monotonic() >= self._drain_until:
                self.should_exit = True
        return await super().on_tick(counter)


class _DrainingProcess(multiprocess.Process):
    """A uvicorn worker process that runs DrainingServer rather than uvicorn's Server."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


def serve(
    app_factory: str, *, host: str, port: int, workers: int, forwarded_allow_ips: str
) -> None:
    """uvicorn as `jobsearch-api` runs it; the benchmarks' baselines run through it too,
    so that only the app differs.

    What uvicorn.run does for these settings, with DrainingServer in every worker.
    """
    config = uvicorn.Config(
        app_factory,
        factory=True,
        http=HTTP_PROTOCOL,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=5,
    )
    if config.workers > 1:
        # The supervisor forwards SIGTERM to each worker. It builds each worker's
        # server through its module's Process class (at start, on a crash restart,
        # on SIGHUP and SIGTTIN), with no option to choose the class, so that name
        # is pointed at ours; the worker unpickles _DrainingProcess from this module.
        multiprocess.Process = _DrainingProcess  # type: ignore[misc]
        sock = config.bind_socket()
        with contextlib.suppress(KeyboardInterrupt):
            multiprocess.Multiprocess(config, sockets=[sock]).run()
        return

    config.load_app()
    server = DrainingServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
