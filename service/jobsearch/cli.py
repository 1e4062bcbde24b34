"""`jobsearch-api`: serve the app with uvicorn, configured from the environment."""

from __future__ import annotations

import os
import sys
import tempfile

from pydantic import ValidationError

from jobsearch.server import serve
from jobsearch.settings import Settings, describe_validation_error


def main() -> None:
    try:
        settings = Settings()
    except ValidationError as error:
        print(describe_validation_error(error), file=sys.stderr)
        raise SystemExit(2) from None

    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Workers are separate processes; metrics are pooled through files here.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="jobsearch-metrics-")

    serve(
        "jobsearch.main:create_app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


if __name__ == "__main__":
    main()
