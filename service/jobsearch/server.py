"""The HTTP protocol uvicorn speaks for us: httptools, with TCP_NODELAY on every connection.

asyncio turns TCP_NODELAY on only for sockets whose protocol field says TCP.
uvicorn creates its listening socket itself when it runs several workers (and
tests hand it ready sockets), with the protocol field left at 0, so accepted
connections keep Nagle's algorithm: a response written as headers, then body,
waits for the client's delayed ACK, about 40 ms on every kept-alive request.
(uvicorn issue #3149.) Setting the option per connection fixes every path.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# In-flight requests get this long to finish after SIGTERM; the container's stop
# timeout (see infra/topology.py) is longer, so they are never cut off.
GRACEFUL_SHUTDOWN_SECONDS = 20


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]


HTTP_PROTOCOL = f"{__name__}:NoDelayHttpToolsProtocol"


def serve(
    app_factory: str, *, host: str, port: int, workers: int, forwarded_allow_ips: str
) -> None:
    """uvicorn as `jobsearch-api` runs it; the benchmarks' baselines run through it too,
    so that only the app differs."""
    uvicorn.run(
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
