"""Lock-free counters and histograms for the per-request hot path, exported through prometheus_client collectors.

Why not prometheus_client's own Histogram/Counter here: every request touches about fifteen metric series (plugin
durations, request sizes, token counts). Measured on this machine, `Histogram.labels(...).observe(v)` costs ~3 µs
(label lookup, a lock, a linear bucket scan) and `Counter.labels(...).inc()` ~2.6 µs: ~40 µs per request, a sixth of
the EPP's own Python time per decision. These classes do the same in 0.3–0.5 µs (a dict lookup and a bisect) because the
EPP runs on one event-loop thread; the exposition format is still produced by prometheus_client at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector


class FastHistogram(Collector):
    """A labelled histogram; `observe(labels_tuple, value)`. Not thread-safe (one event loop)."""

    def __init__(self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name = name
        self.doc = doc
        self.label_names = list(labels)
        self.bounds = [float(b) for b in buckets]
        self._series: dict[tuple[str, ...], list[float]] = {}  # counts per bucket (+Inf last), then the sum

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        s = self._series.get(labels)
        if s is None:
            s = self._series[labels] = [0.0] * (len(self.bounds) + 2)
        # bisect_left: a value equal to a bound belongs to that bucket (le = "less or equal")
        s[bisect_left(self.bounds, value)] += 1
        s[-1] += value

    def count(self, labels: tuple[str, ...]) -> float:
        s = self._series.get(labels)
        return sum(s[:-1]) if s else 0.0

    def collect(self) -> Iterator[HistogramMetricFamily]:
        fam = HistogramMetricFamily(self.name, self.doc, labels=self.label_names)
        for labels, s in list(self._series.items()):
            cumulative = 0.0
            buckets = []
            for bound, n in zip([*self.bounds, float("inf")], s[:-1], strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            fam.add_metric(list(labels), buckets, s[-1])
        yield fam


class FastCounter(Collector):
    def __init__(self, name: str, doc: str, labels: Sequence[str]) -> None:
        self.name = name.removesuffix("_total")
        self.doc = doc
        self.label_names = list(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def collect(self) -> Iterator[CounterMetricFamily]:
        fam = CounterMetricFamily(self.name, self.doc, labels=self.label_names)
        for labels, v in list(self.values.items()):
            fam.add_metric(list(labels), v)
        yield fam


class FastGauge(Collector):
    def __init__(self, name: str, doc: str, labels: Sequence[str]) -> None:
        self.name = name
        self.doc = doc
        self.label_names = list(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def add(self, labels: tuple[str, ...], amount: float) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def collect(self) -> Iterator[GaugeMetricFamily]:
        fam = GaugeMetricFamily(self.name, self.doc, labels=self.label_names)
        for labels, v in list(self.values.items()):
            fam.add_metric(list(labels), v)
        yield fam
