"""The local instances of `ops local` (infra/local/), opened for `ops status` and `ops rollback`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import cast

from docker.errors import DockerException

from infra.local.engine import EngineError, ensure_engine
from infra.local.images import ImageError
from infra.local.runner import LocalRunner, RolloutError, Say
from infra.local.state import STATE_ROOT, LocalEnvironment, LocalState, StateError
from infra.migrations import MigrationError
from infra.ops.cli import OpsError

__all__ = ["LOCAL_FAILURES", "failures_as_ops_errors", "open_runner"]


# Everything a local instance's commands can fail with; each message says what to do.
LOCAL_FAILURES = (
    EngineError,
    ImageError,
    RolloutError,
    StateError,
    MigrationError,
    DockerException,
)


@contextlib.contextmanager
def failures_as_ops_errors() -> Iterator[None]:
    try:
        yield
    except LOCAL_FAILURES as error:
        raise OpsError(str(error)) from None


def _say(message: str) -> None:
    # Progress goes to stderr: stdout stays one JSON document with --json.
    print(message, file=sys.stderr, flush=True)


def open_runner(environment: str, say: Say = _say) -> LocalRunner:
    """The runner of an instance `ops local up` configured (progress to stderr by default)."""
    state = LocalState(cast(LocalEnvironment, environment))
    config = state.load_config()
    return LocalRunner(ensure_engine(STATE_ROOT), state, config, say=say)
