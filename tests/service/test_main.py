"""The app as main.py builds it: what leaves it besides its answers, and how its worker runs.

Each check runs in a fresh interpreter: OpenTelemetry's global providers can be
set once per process, and the garbage collector's state is the whole process's.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from jobsearch.main import YOUNG_GENERATION_THRESHOLD

_SPANS_WITH_A_GLOBAL_PROVIDER = textwrap.dedent(
    """
    import httpx
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from jobsearch.main import create_app
    from jobsearch.settings import settings_from
    from harness.servers import serve_in_thread

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # Proves the provider records: a span of our own is exported.
    with trace.get_tracer("check").start_as_current_span("own"):
        pass
    app = create_app(settings_from({"APP_ENV": "development"}))
    with serve_in_thread(app) as url:
        for path in ("/health", "/api/jobs/jsearch", "/nowhere"):
            httpx.get(url + path, timeout=10)
    print("RESULT", ",".join(span.name for span in exporter.get_finished_spans()))
    """
)


_COLLECTOR_ONCE_SERVING = textwrap.dedent(
    """
    import gc
    import httpx

    from jobsearch.main import create_app
    from jobsearch.settings import settings_from
    from harness.servers import serve_in_thread

    app = create_app(settings_from({"APP_ENV": "development"}))
    built = len(gc.get_objects())
    with serve_in_thread(app) as url:
        httpx.get(url + "/health", timeout=10)
        print("RESULT", built, gc.get_freeze_count(), gc.get_threshold()[0])
    """
)


def _result_of(script: str) -> str:
    """What the script printed after RESULT (the app logs to stdout too)."""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    printed = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(printed) == 1, result.stdout[-2000:]
    return printed[0].removeprefix("RESULT ")


def test_no_opentelemetry_spans_even_when_the_host_sets_up_a_provider() -> None:
    # Only the check's own span: FastAPI's request spans are switched off.
    assert _result_of(_SPANS_WITH_A_GLOBAL_PROVIDER) == "own"


def test_startup_objects_are_kept_out_of_the_collectors_scans() -> None:
    built, frozen, young_threshold = map(int, _result_of(_COLLECTOR_ONCE_SERVING).split())
    # What existed once the app was built lives as long as the worker: frozen, so that
    # a full collection no longer walks it (startup garbage, collected first, may be fewer).
    assert frozen >= 0.9 * built
    assert young_threshold == YOUNG_GENERATION_THRESHOLD
