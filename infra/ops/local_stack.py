"""The local instances of `ops local` (infra/local/), opened for `ops status` and `ops rollback`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import cast

from docker.errors import DockerException

from infra.local.engine import EngineError, ensure_engine
from infra.local.runner import LocalRunner, RolloutError
from infra.local.state import STATE_ROOT, LocalEnvironment, LocalState, StateError
from infra.ops.cli import OpsError

__all__ = ["failures_as_ops_errors", "open_runner"]


@contextlib.contextmanager
def failures_as_ops_errors() -> Iterator[None]:
    try:
        yield
    except (EngineError, RolloutError, StateError, DockerException) as error:
        raise OpsError(str(error)) from None


def _say(message: str) -> None:
    # Progress goes to stderr: stdout stays one JSON document with --json.
    print(message, file=sys.stderr, flush=True)


def open_runner(environment: str) -> LocalRunner:
    state = LocalState(cast(LocalEnvironment, environment))
    config = state.load_config()
    return LocalRunner(ensure_engine(STATE_ROOT), state, config, say=_say)
