"""`jobsearch-api`: serve the app with uvicorn, configured from the environment."""

from __future__ import annotations

import os
import sys
import tempfile

import uvicorn
from pydantic import ValidationError

from jobsearch.server import HTTP_PROTOCOL
from jobsearch.settings import Settings, describe_validation_error

# In-flight requests get this long to finish after SIGTERM; the container's stop
# timeout (see infra/topology.py) is longer, so they are never cut off.
GRACEFUL_SHUTDOWN_SECONDS = 20


def main() -> None:
    try:
        settings = Settings()
    except ValidationError as error:
        print(describe_validation_error(error), file=sys.stderr)
        raise SystemExit(2) from None

    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Workers are separate processes; metrics are pooled through files here.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="jobsearch-metrics-")

    uvicorn.run(
        "jobsearch.main:create_app",
        factory=True,
        http=HTTP_PROTOCOL,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=5,
    )


if __name__ == "__main__":
    main()
