"""The service's /metrics, read with prometheus-client's own parser: what `ops diagnose`
reports of each source and what the cache-hit benchmark counts."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Metrics = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse_metrics(text: str) -> Metrics:
    """Prometheus text as {sample name: {sorted labels: value}}; ValueError if unreadable."""
    metrics: Metrics = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            metrics.setdefault(sample.name, {})[key] = float(sample.value)
    return metrics


def series(metrics: Metrics | None, name: str, **labels: str) -> float | None:
    """The sum of a sample's values over the series carrying these labels; None if none."""
    if metrics is None:
        return None
    wanted = set(labels.items())
    values = [v for key, v in metrics.get(name, {}).items() if wanted <= set(key)]
    return sum(values) if values else None
