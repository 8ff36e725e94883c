"""Prometheus text-format metrics kept in memory (no client library needed).

Counters and histograms are updated from the event loop and the model threads, so each update
takes a lock. `Metrics.render` gives the text served at ``GET /metrics``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

__all__ = ["Metrics", "Histogram", "Counter"]

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    body = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values))
    return "{" + body + "}"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(x: float) -> str:
    if math.isinf(x):
        return "+Inf"
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


class Counter:
    """A counter with labels."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.labels = name, help_text, tuple(labels)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, *values: str, by: float = 1.0) -> None:
        with self._lock:
            self._values[values] = self._values.get(values, 0.0) + by

    def value(self, *values: str) -> float:
        return self._values.get(values, 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items())
        lines += [f"{self.name}{_labels(self.labels, k)} {_num(v)}" for k, v in items]
        return lines


class Histogram:
    """A histogram without labels (cumulative buckets, sum and count)."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name, self.help = name, help_text
        self.buckets = tuple(buckets)
        self._counts = [0] * (len(self.buckets) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            for i, edge in enumerate(self.buckets):
                if value <= edge:
                    self._counts[i] += 1
                    break
            else:
                self._counts[-1] += 1
            self._sum += value

    @property
    def count(self) -> int:
        return sum(self._counts)

    def render(self) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        running = 0
        for edge, c in zip((*self.buckets, math.inf), counts):
            running += c
            lines.append(f'{self.name}_bucket{{le="{_num(edge)}"}} {running}')
        lines += [f"{self.name}_sum {_num(total)}", f"{self.name}_count {running}"]
        return lines


class Metrics:
    """The service's metrics; gauges are read from callables at render time."""

    def __init__(self) -> None:
        self.requests = Counter("featx_requests_total", "HTTP requests by route, method and status",
                                ("route", "method", "status"))
        self.errors = Counter("featx_request_errors_total", "HTTP requests answered with status >= 400",
                              ("route", "status"))
        self.input_errors = Counter("featx_input_errors_total", "inputs that failed (per-item errors)")
        self.rejected = Counter("featx_rejected_total",
                                "requests refused: queue_full (503), too_large (413), timeout (504)", ("reason",))
        self.batch_size = Histogram("featx_batch_size", "inputs per model call", _SIZES)
        self.queue_seconds = Histogram("featx_queue_seconds", "time from submit to the start of its model call",
                                       _SECONDS)
        self.model_seconds = Histogram("featx_model_seconds", "time of one model call (a batch)", _SECONDS)
        self.request_seconds = Histogram("featx_request_seconds", "time to answer a request", _SECONDS)
        self.reloads = Counter("featx_index_reloads_total", "times the rows were reloaded (--watch)")
        self._gauges: list[tuple[str, str, Callable[[], float]]] = []

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._gauges.append((name, help_text, read))

    def on_batch(self, stats: object) -> None:
        """The `featx.serve.batching.Batcher` hook."""
        self.batch_size.observe(stats.size)  # type: ignore[attr-defined]
        self.model_seconds.observe(stats.model_s)  # type: ignore[attr-defined]
        for q in stats.queue_s:  # type: ignore[attr-defined]
            self.queue_seconds.observe(q)

    def render(self) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.errors, self.input_errors, self.rejected, self.reloads):
            lines += metric.render()
        for hist in (self.batch_size, self.queue_seconds, self.model_seconds, self.request_seconds):
            lines += hist.render()
        for name, help_text, read in self._gauges:
            try:
                value = float(read())
            except Exception:  # noqa: BLE001 - a gauge that cannot be read is left out
                continue
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_num(value)}"]
        return "\n".join(lines) + "\n"
