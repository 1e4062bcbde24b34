"""The circuit breaker on its own: a trial always ends, even one that never reports back."""

from __future__ import annotations

import time

import pytest

from jobsearch.breaker import CircuitBreaker, CircuitState


def half_open(**options: float) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_seconds=0, **options)
    breaker.record_failure()
    assert breaker.state is CircuitState.HALF_OPEN
    return breaker


def test_a_trial_that_outlives_its_timeout_expires() -> None:
    breaker = half_open(trial_timeout_seconds=0.1)
    assert breaker.allow()  # the trial goes, and never reports back
    assert not breaker.allow()
    time.sleep(0.15)
    assert breaker.allow()  # the lost trial expired: this call is the new trial
    assert not breaker.allow()


def test_a_trial_that_raises_something_unplanned_counts_as_a_failure() -> None:
    breaker = half_open()
    assert breaker.allow()
    with pytest.raises(KeyError), breaker.guard():
        raise KeyError("unplanned")
    assert breaker.allow()  # reset_after_seconds=0: at once half-open again, with a new trial


def test_a_trial_that_ends_without_a_verdict_is_released() -> None:
    breaker = half_open()
    assert breaker.allow()
    with breaker.guard():
        pass
    assert breaker.allow()
    with breaker.guard():
        breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


def test_a_guard_in_closed_state_leaves_the_counts_alone() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    assert breaker.allow()
    with pytest.raises(KeyError), breaker.guard():
        raise KeyError("unplanned")
    assert breaker.state is CircuitState.CLOSED
