"""Daily budgets of paid upstream calls (budget.py): shared in Redis, else per process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import redis

from harness.servers import closed_port
from infra.standins.app import StandinState
from jobsearch.budget import budget_key, seconds_until_next_utc_day
from tests.conftest import ServiceRunner

REDIS_DB = 8  # this module's own database on the machine's Redis
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


@pytest.fixture
def budget_redis() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()


def _search(url: str, source: str, title: str) -> httpx.Response:
    return httpx.post(f"{url}/api/jobs/{source}", json={"jobTitle": title})


def _remaining_metric(url: str, source: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f'jobsearch_upstream_budget_remaining{{source="{source}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no budget gauge for {source}")


def test_a_spent_budget_still_serves_hits_and_refuses_misses_until_utc_midnight(
    run_service: ServiceRunner, fakes: StandinState, budget_redis: redis.Redis
) -> None:
    with run_service(redis_url=REDIS_URL, jsearch_daily_budget=2) as url:
        first = _search(url, "jsearch", "first")
        second = _search(url, "jsearch", "second")
        hit = _search(url, "jsearch", "first")
        refused = _search(url, "jsearch", "third")
        other_source = _search(url, "theirstack", "third")
        ready = httpx.get(f"{url}/ready").json()
        remaining = _remaining_metric(url, "jsearch")
    expected_retry = seconds_until_next_utc_day(datetime.now(UTC))
    assert [first.status_code, second.status_code] == [200, 200]
    assert (hit.status_code, hit.headers["x-cache"]) == (200, "hit")
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "budget_exhausted"
    assert abs(int(refused.headers["retry-after"]) - expected_retry) <= 5
    assert other_source.status_code == 200, "TheirStack has no budget"
    assert fakes.jsearch.calls == 2
    assert ready["status"] == "degraded"
    assert ready["checks"]["budget"]["status"] == "exhausted"
    jsearch = ready["checks"]["budget"]["sources"]["jsearch"]
    assert jsearch["status"] == "exhausted"
    assert (jsearch["limit"], jsearch["remaining"], jsearch["counted_in"]) == (2, 0, "redis")
    assert abs(jsearch["resets_in_seconds"] - expected_retry) <= 5
    theirstack = ready["checks"]["budget"]["sources"]["theirstack"]
    assert (theirstack["status"], theirstack["limit"], theirstack["remaining"]) == (
        "unlimited",
        None,
        None,
    )
    assert remaining == 0
    key = budget_key("jsearch", datetime.now(UTC).date().isoformat())
    assert 0 < budget_redis.ttl(key) <= 2 * 24 * 3600, "the day's counter expires"


def test_the_budget_is_shared_by_every_process(
    run_service: ServiceRunner, fakes: StandinState, budget_redis: redis.Redis
) -> None:
    with contextlib.ExitStack() as stack:
        one = stack.enter_context(run_service(redis_url=REDIS_URL, theirstack_daily_budget=3))
        two = stack.enter_context(run_service(redis_url=REDIS_URL, theirstack_daily_budget=3))
        statuses = [
            _search(one, "theirstack", "a").status_code,
            _search(two, "theirstack", "b").status_code,
            _search(one, "theirstack", "c").status_code,
            _search(two, "theirstack", "d").status_code,
            _search(one, "theirstack", "e").status_code,
        ]
        # The other process reads the shared count too.
        ready = httpx.get(f"{two}/ready").json()
    assert statuses == [200, 200, 200, 503, 503]
    assert fakes.theirstack.calls == 3
    assert ready["checks"]["budget"]["sources"]["theirstack"]["remaining"] == 0


def test_with_redis_down_each_process_counts_its_share(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    dead_redis = f"redis://127.0.0.1:{closed_port()}/0"
    # 4 a day over 2 replicas of 1 worker: 2 for this process.
    with run_service(redis_url=dead_redis, jsearch_daily_budget=4, replicas=2, workers=1) as url:
        statuses = [_search(url, "jsearch", f"t{i}").status_code for i in range(3)]
        ready = httpx.get(f"{url}/ready").json()
    assert statuses == [200, 200, 503]
    jsearch = ready["checks"]["budget"]["sources"]["jsearch"]
    assert (jsearch["remaining"], jsearch["counted_in"]) == (0, "memory")


def test_no_budget_means_unlimited(run_service: ServiceRunner, fakes: StandinState) -> None:
    with run_service() as url:
        statuses = {_search(url, "jsearch", f"u{i}").status_code for i in range(5)}
        ready = httpx.get(f"{url}/ready").json()
    assert statuses == {200}
    budget = ready["checks"]["budget"]
    assert budget["status"] == "ok"
    assert {name: info["status"] for name, info in budget["sources"].items()} == {
        "jsearch": "unlimited",
        "theirstack": "unlimited",
    }


def test_a_budget_setting_is_named_when_invalid() -> None:
    from pydantic import ValidationError

    from jobsearch.settings import Settings, describe_validation_error

    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({"jsearch_daily_budget": "-1", "theirstack_daily_budget": "lots"})
    line = describe_validation_error(caught.value)
    assert "JSEARCH_DAILY_BUDGET" in line
    assert "THEIRSTACK_DAILY_BUDGET" in line
