"""The app as main.py builds it: what it sends, beyond its answers, to the outside."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Run in a fresh interpreter: OpenTelemetry's global providers can be set once per process.
_SPANS_WITH_A_GLOBAL_PROVIDER = textwrap.dedent(
    """
    import httpx
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from jobsearch.main import create_app
    from jobsearch.settings import settings_from
    from tests.support.servers import serve_in_thread

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
    print(",".join(span.name for span in exporter.get_finished_spans()))
    """
)


def test_no_opentelemetry_spans_even_when_the_host_sets_up_a_provider() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SPANS_WITH_A_GLOBAL_PROVIDER],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Only the check's own span: FastAPI's request spans are switched off.
    assert result.stdout.strip().splitlines()[-1] == "own"
