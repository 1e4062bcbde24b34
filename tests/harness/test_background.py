"""The load generators report what happened, never a quiet partial tally."""

from __future__ import annotations

import pytest

from harness.background import BackgroundLoad
from harness.load import Call, LoadError
from harness.servers import closed_port


def test_a_crashed_background_load_raises_instead_of_reporting_a_tally() -> None:
    # An invalid URL is not a transport error the clients count: it ends their thread.
    broken = Call("GET", f"http://[::1:{closed_port()}")
    load = BackgroundLoad(f"http://127.0.0.1:{closed_port()}", [broken], concurrency=1)
    with pytest.raises(LoadError, match="load generator crashed"), load:
        load._thread.join(timeout=10)  # the body outlives the clients' thread, as a slow one would


def test_waiting_on_a_crashed_background_load_names_the_crash() -> None:
    broken = Call("GET", f"http://[::1:{closed_port()}")
    load = BackgroundLoad(f"http://127.0.0.1:{closed_port()}", [broken], concurrency=1)
    with pytest.raises(LoadError, match="load generator crashed"), load:
        load.wait_for(10, timeout=10)
