"""Metric families for the simulator's `/metrics` page that render cheaply on every scrape.

The endpoint picker scrapes every replica every 50 ms, so an idle replica renders its page 20 times a second.
prometheus_client's `generate_latest` over the engine's registry cost ~2.5 ms of CPU per page (14 histograms,
~330 lines, a formatting call per sample): ~50 ms of CPU a second per idle replica (benchmarks/sim_metrics_cost.py).

Here each family keeps its fragment of the page. The fragment's text is produced by prometheus_client itself
(`generate_latest` on the one family) whenever the family's shape changes (a new label set), and split into the
per-sample prefixes; afterwards a scrape only refills the values with prometheus_client's own `floatToGoString`,
and a family whose values did not change since the last scrape returns its cached text untouched. The page is
therefore byte-identical to `generate_latest(registry)` (checked by tests/unit/sim/test_sim_metrics_exposition.py),
while `collect()` keeps the families usable in any prometheus_client registry.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from bisect import bisect_left
from collections.abc import Callable, Iterable

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class Family(Collector):
    """One metric family: `collect()` for prometheus_client, `text()` for the page."""

    def __init__(self) -> None:
        self._shape: object = object()  # never equal to a real shape: the first text() renders
        self._values: list[float] = []
        self._header = ""
        self._prefixes: list[str] = []
        self._text = ""

    @abstractmethod
    def collect(self) -> Iterable[Metric]: ...

    @abstractmethod
    def values(self) -> list[float]:
        """The sample values, in the order `collect()` yields the samples."""

    def shape(self) -> object:
        """Changes when the label sets (not the values) change; the default is a fixed shape."""
        return None

    def _template(self) -> None:
        lines = generate_latest(self).decode().splitlines(keepends=True)
        self._header = "".join(line for line in lines if line.startswith("#"))
        self._prefixes = [line[: line.rindex(" ") + 1] for line in lines if not line.startswith("#")]

    def text(self) -> str:
        shape = self.shape()
        values = self.values()
        if shape != self._shape:
            self._shape = shape
            self._template()
        elif values == self._values:
            return self._text
        self._values = values
        self._text = self._header + "".join(
            [f"{p}{floatToGoString(v)}\n" for p, v in zip(self._prefixes, values, strict=True)]
        )
        return self._text


class FastHistogram(Family):
    """A histogram with one label set, observed in bulk (`observe(value, count)`).

    Hand-written instead of prometheus_client's Histogram because the step loop records an inter-token gap for
    every token of every running stream: prometheus_client's observe (a lock plus a per-bucket walk) measured at
    ~12 µs per token under the 128-stream benchmark, this one at well under 1 µs; the exposition is identical.
    """

    def __init__(self, name: str, doc: str, labels: dict[str, str], buckets: Iterable[float]) -> None:
        super().__init__()
        self.name = name
        self.doc = doc
        self._labels = labels
        self.bounds = sorted(float(b) for b in buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.version = 0  # bumped by observe: an unchanged histogram skips even the cumulative sums
        self._seen = -1

    def observe(self, value: float, count: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += count
        self.sum += value * count
        self.version += 1

    def _cumulative(self) -> list[float]:
        out: list[float] = []
        total = 0
        for c in self.counts:
            total += c
            out.append(total)
        return out

    def collect(self) -> Iterable[HistogramMetricFamily]:
        fam = HistogramMetricFamily(self.name, self.doc, labels=list(self._labels))
        bounds = [*map(floatToGoString, self.bounds), "+Inf"]
        fam.add_metric(list(self._labels.values()), list(zip(bounds, self._cumulative(), strict=True)), self.sum)
        yield fam

    def values(self) -> list[float]:
        cumulative = self._cumulative()
        return [*cumulative, cumulative[-1], self.sum]  # buckets, _count, _sum: HistogramMetricFamily's order

    def text(self) -> str:
        if self.version == self._seen and self._text:
            return self._text
        self._seen = self.version
        return super().text()


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class FastCounter(Family):
    """A counter family with label sets created on first use (`labels(...).inc(n)`), like prometheus_client's."""

    def __init__(self, name: str, doc: str, labelnames: list[str]) -> None:
        super().__init__()
        self.name = name
        self.doc = doc
        self._names = labelnames
        self._children: dict[tuple[str, ...], CounterChild] = {}

    def labels(self, *values: str) -> CounterChild:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = CounterChild()
        return child

    def collect(self) -> Iterable[CounterMetricFamily]:
        fam = CounterMetricFamily(self.name, self.doc, labels=self._names)
        for values, child in self._children.items():
            fam.add_metric(list(values), child.value)
        yield fam

    def values(self) -> list[float]:
        return [c.value for c in self._children.values()]

    def shape(self) -> object:
        return len(self._children)


class FnGauge(Family):
    """A gauge with one label set whose value is read at scrape time (queue lengths, KV usage)."""

    def __init__(self, name: str, doc: str, labels: dict[str, str], fn: Callable[[], float]) -> None:
        super().__init__()
        self.name = name
        self.doc = doc
        self._labels = labels
        self.fn = fn

    def collect(self) -> Iterable[GaugeMetricFamily]:
        fam = GaugeMetricFamily(self.name, self.doc, labels=list(self._labels))
        fam.add_metric(list(self._labels.values()), float(self.fn()))
        yield fam

    def values(self) -> list[float]:
        return [float(self.fn())]


class LoraInfo(Family):
    """`vllm:lora_requests_info`: one series whose labels list running/waiting adapters, value = last change."""

    def __init__(self, labels: dict[str, str], max_lora: int, state: Callable[[], tuple[list[str], list[str]]]):
        super().__init__()
        self._labels = labels
        self._max_lora = str(max_lora)
        self._state = state
        self._last: tuple[str, str] | None = None
        self._stamp = time.time()

    def _refresh(self) -> tuple[str, str]:
        running, waiting = self._state()
        key = (",".join(sorted(running)), ",".join(sorted(waiting)))
        if key != self._last:
            self._last, self._stamp = key, time.time()
        return key

    def collect(self) -> Iterable[GaugeMetricFamily]:
        key = self._refresh()
        names = ["running_lora_adapters", "waiting_lora_adapters", "max_lora"]
        fam = GaugeMetricFamily("vllm:lora_requests_info", "Running stats on lora requests.", labels=names)
        fam.add_metric([key[0], key[1], self._max_lora], self._stamp)
        yield fam

    def values(self) -> list[float]:
        return [self._stamp]

    def shape(self) -> object:
        return self._refresh()  # the adapters are label values: a change re-renders the line
