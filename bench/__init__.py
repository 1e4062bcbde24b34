"""Benchmarks: the platform measured against the simple alternative, side by side.

`python -m bench` (`make bench`) runs all five and rewrites docs/benchmarks.md.
Every headline is a ratio of two things measured in the same run on the same
machine, because these machines are noisy; an absolute time is only ever a
supporting figure. Traffic goes to 127.0.0.1 and the project's own containers.

1. cache_hit       a cached search vs a bare FastAPI endpoint (requests/s)
2. slow_upstream   64 searches on a 2 s upstream vs the old blocking app (wall time)
3. upstream_calls  paid upstream calls for 1,000 Zipf-drawn searches vs one per request
4. rollout         failed requests during a rolling replacement on the local topology
5. footprint       image size, cold start and RSS per worker vs a bare app
"""
