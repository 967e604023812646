"""Prometheus metrics of a worker: ``maestro worker --metrics-port 9464`` serves
``GET /metrics`` (text exposition format 0.0.4) on 127.0.0.1 unless told otherwise.

:class:`WorkerMetrics` is an event handler: it counts the model calls, tokens and latencies
of every run the worker's jobs make, and the runs and jobs that finish; jobs by state come
from the queue, and waits on provider limits from the limiter, when scraped.

- ``maestro_jobs{state}``: jobs in the queue by state (pending, running, interrupted, ...)
- ``maestro_jobs_finished_total{status}``, ``maestro_runs_finished_total{status}``
- ``maestro_model_calls_total{model,outcome}``: calls on the wire (ok, invalid, error) and
  answers from the cache (cached)
- ``maestro_tokens_total{model,direction}``: input and output tokens
- ``maestro_model_call_seconds{model}``: a histogram of call latency (cached left out)
- ``maestro_step_seconds{kind}``: a histogram of finished steps' durations
- ``maestro_limiter_wait_seconds_total{provider}``, ``maestro_limiter_delayed_calls_total``,
  ``maestro_limiter_waiting``, ``maestro_limiter_in_flight``: the shared provider limits
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..events import ModelAttempted, RunFinished, StepFinished
from ..limits import Limiter
from .events import JobFinished

__all__ = ["BUCKETS", "WorkerMetrics", "start_metrics_server"]

BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
"""Upper bounds (seconds) of the latency histograms' buckets."""

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels, extra: Labels = ()) -> str:
    pairs = [*labels, *extra]
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(buckets)
        self.counts = [0] * len(self.bounds)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
        self.count += 1
        self.sum += value


class WorkerMetrics:
    """Counts what a worker does; :meth:`render` writes it in Prometheus' text format.

    Args:
        job_counts: Jobs by state, read at each scrape (``store.job_counts``).
        limiter: The worker's shared limiter (its gates' waits), if any.
        buckets: Upper bounds of the histograms' buckets, in seconds.
    """

    def __init__(
        self,
        *,
        job_counts: Callable[[], Mapping[str, int]] | None = None,
        limiter: Limiter | None = None,
        buckets: Sequence[float] = BUCKETS,
    ) -> None:
        self.job_counts = job_counts
        self.limiter = limiter
        self.buckets = tuple(buckets)
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._histograms: dict[str, dict[Labels, _Histogram]] = defaultdict(dict)

    def _add(self, name: str, labels: Labels, amount: float = 1.0) -> None:
        self._counters[name][labels] += amount

    def _observe(self, name: str, labels: Labels, value: float) -> None:
        histogram = self._histograms[name].get(labels)
        if histogram is None:
            histogram = self._histograms[name][labels] = _Histogram(self.buckets)
        histogram.observe(value)

    def __call__(self, event: Any) -> None:
        """Count one worker or run event (others are ignored)."""
        with self._lock:
            match event:
                case ModelAttempted():
                    model = (("model", event.model),)
                    self._add("maestro_model_calls_total", (*model, ("outcome", event.outcome)))
                    self._add(
                        "maestro_tokens_total",
                        (*model, ("direction", "input")),
                        event.usage.input_tokens,
                    )
                    self._add(
                        "maestro_tokens_total",
                        (*model, ("direction", "output")),
                        event.usage.output_tokens,
                    )
                    if event.outcome != "cached":
                        self._observe("maestro_model_call_seconds", model, event.seconds)
                case StepFinished() if event.result is not None:
                    result = event.result
                    if result.started_at and result.finished_at:
                        seconds = (result.finished_at - result.started_at).total_seconds()
                        self._observe("maestro_step_seconds", (("kind", result.kind),), seconds)
                case RunFinished():
                    self._add("maestro_runs_finished_total", (("status", event.status),))
                case JobFinished():
                    self._add("maestro_jobs_finished_total", (("status", event.status),))

    _HELP: ClassVar[dict[str, tuple[str, str]]] = {
        "maestro_jobs": ("gauge", "Jobs in the worker's queue, by state."),
        "maestro_jobs_finished_total": ("counter", "Jobs this worker finished, by status."),
        "maestro_runs_finished_total": ("counter", "Runs this worker finished, by status."),
        "maestro_model_calls_total": ("counter", "Model calls, by model and outcome."),
        "maestro_tokens_total": ("counter", "Model tokens, by model and direction."),
        "maestro_model_call_seconds": ("histogram", "Latency of model calls (not cached)."),
        "maestro_step_seconds": ("histogram", "Duration of finished steps, by step kind."),
        "maestro_limiter_wait_seconds_total": (
            "counter",
            "Seconds calls waited for a provider's limits.",
        ),
        "maestro_limiter_delayed_calls_total": (
            "counter",
            "Calls that had to wait for a provider's limits.",
        ),
        "maestro_limiter_waiting": ("gauge", "Calls waiting for a provider's limits now."),
        "maestro_limiter_in_flight": ("gauge", "Calls in flight to a provider now."),
    }

    def render(self) -> str:
        """Every metric in the Prometheus text exposition format (version 0.0.4)."""
        samples: dict[str, list[str]] = defaultdict(list)
        if self.job_counts is not None:
            for state, count in sorted(self.job_counts().items()):
                samples["maestro_jobs"].append(
                    f"maestro_jobs{_labels((('state', state),))} {count}"
                )
        if self.limiter is not None:
            for key in self.limiter.gates():
                stats = self.limiter.stats(key)
                provider = (("provider", key),)
                for name, value in (
                    ("maestro_limiter_wait_seconds_total", stats.waited_seconds),
                    ("maestro_limiter_delayed_calls_total", stats.delayed),
                    ("maestro_limiter_waiting", stats.waiting),
                    ("maestro_limiter_in_flight", stats.in_flight),
                ):
                    samples[name].append(f"{name}{_labels(provider)} {_number(value)}")
        with self._lock:
            for name, series in self._counters.items():
                for labels, value in sorted(series.items()):
                    samples[name].append(f"{name}{_labels(labels)} {_number(value)}")
            for name, histograms in self._histograms.items():
                for labels, h in sorted(histograms.items()):
                    for bound, count in zip(h.bounds, h.counts, strict=True):
                        le = (("le", _number(bound)),)
                        samples[name].append(f"{name}_bucket{_labels(labels, le)} {count}")
                    inf = (("le", "+Inf"),)
                    samples[name].append(f"{name}_bucket{_labels(labels, inf)} {h.count}")
                    samples[name].append(f"{name}_sum{_labels(labels)} {_number(h.sum)}")
                    samples[name].append(f"{name}_count{_labels(labels)} {h.count}")
        lines = []
        for name, (kind, help_text) in self._HELP.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples[name]]
        return "\n".join(lines) + "\n"


async def start_metrics_server(
    metrics: WorkerMetrics, *, host: str = "127.0.0.1", port: int = 9464
) -> asyncio.Server:
    """Serve ``GET /metrics`` on ``host:port`` (0 picks a free port); close the returned
    server to stop. A minimal HTTP/1.0 responder: one request per connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if method == "GET" and path.split("?", 1)[0] == "/metrics":
                body = (await asyncio.to_thread(metrics.render)).encode()
                status, kind = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
            else:
                body, status, kind = b"only GET /metrics here\n", "404 Not Found", "text/plain"
            head = (
                f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass  # a client that sent no request, or garbage: nothing to answer
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    return await asyncio.start_server(handle, host, port)
