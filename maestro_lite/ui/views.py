"""What the run page shows, computed from a :class:`~maestro_lite.runs.RunRecord` and its
events: the plan's DAG laid out in layers, the timeline of steps and model calls, and each
citation's quote located in the text it came from.

Only geometry and plain values are computed here; the templates render them, escaping
every piece of text (document text is data, never markup).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from ..events import Event, ModelAttempted, StepStarted
from ..plan import Plan
from ..result import Citation, StepResult
from ..runs import RunRecord

__all__ = [
    "Bar",
    "Dag",
    "Edge",
    "Highlight",
    "Node",
    "Timeline",
    "TimelineRow",
    "dag",
    "highlight",
    "latest_results",
    "timeline",
]

NODE_W, NODE_H, GAP_X, GAP_Y = 170, 46, 60, 18
ROW_H, LABEL_W, PLOT_W = 22, 150, 760


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    label: str
    status: str
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    path: str
    """SVG path data of a curve from a dependency to the step that needs it."""


@dataclass(frozen=True)
class Dag:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    node_w: int = NODE_W
    node_h: int = NODE_H


def latest_results(record: RunRecord) -> dict[str, StepResult]:
    """Each step's latest checkpointed result (steps are stored by round)."""
    return {r.step_id: r for r in record.steps}


def _status(step_id: str, results: dict[str, StepResult], running: set[str]) -> str:
    if step_id in running:
        return "running"
    result = results.get(step_id)
    return result.status if result else "pending"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dag(plan: Plan, results: dict[str, StepResult], running: set[str]) -> Dag:
    """The plan laid out left to right: a step's column is the length of its longest chain
    of dependencies, so every edge points right."""
    depth: dict[str, int] = {}
    for step in plan.steps:  # plans are stored in an order where dependencies come first
        depth[step.id] = 1 + max((depth.get(d, 0) for d in step.depends_on), default=-1)
    columns: dict[int, list[str]] = {}
    for step in plan.steps:
        columns.setdefault(depth[step.id], []).append(step.id)
    at: dict[str, tuple[int, int]] = {}
    for col, ids in columns.items():
        for row, step_id in enumerate(ids):
            at[step_id] = (10 + col * (NODE_W + GAP_X), 10 + row * (NODE_H + GAP_Y))
    nodes = [
        Node(
            id=s.id,
            kind=s.kind,
            label=_short(s.instruction, 26),
            status=_status(s.id, results, running),
            x=at[s.id][0],
            y=at[s.id][1],
        )
        for s in plan.steps
    ]
    edges = []
    for step in plan.steps:
        x2, y2 = at[step.id][0], at[step.id][1] + NODE_H // 2
        for dep in step.depends_on:
            if dep not in at:
                continue
            x1, y1 = at[dep][0] + NODE_W, at[dep][1] + NODE_H // 2
            mid = (x1 + x2) // 2
            edges.append(Edge(f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2 - 6},{y2}"))
    width = 20 + (max(columns) + 1) * (NODE_W + GAP_X) - GAP_X
    height = 20 + max(len(ids) for ids in columns.values()) * (NODE_H + GAP_Y) - GAP_Y
    return Dag(nodes, edges, width, height)


BarKind = Literal["step", "call", "running"]


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    kind: BarKind
    css: str
    """The class that colours it: the step's status, the call's outcome, or ``wait`` (the
    call waited for its provider's limits)."""
    title: str


@dataclass
class TimelineRow:
    label: str
    y: int
    bars: list[Bar] = field(default_factory=list)


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    rows: list[TimelineRow]
    ticks: list[Tick]
    width: int
    height: int
    seconds: float
    label_w: int = LABEL_W
    row_h: int = ROW_H


def _seconds(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


def timeline(record: RunRecord, events: list[Event], *, now: datetime) -> Timeline:
    """Rows of steps (by round) with their model calls inside, plus the planner's and the
    judge's calls: overlapping bars show parallel steps; several calls in one step show
    retries and re-asks; a call coloured ``fallback`` went to another model than the run's;
    a ``wait`` segment before a call is time it waited for its provider's limits."""
    start = record.summary.started_at
    end = record.summary.finished_at or (
        now if record.status == "running" else record.summary.updated_at
    )
    total = max(_seconds(start, end), 1e-3)
    scale = PLOT_W / total

    def x(at: datetime) -> float:
        return LABEL_W + max(0.0, _seconds(start, at)) * scale

    rows: dict[tuple[int, str], TimelineRow] = {}
    order: list[tuple[int, str]] = []

    def row(key: tuple[int, str], label: str) -> TimelineRow:
        if key not in rows:
            rows[key] = TimelineRow(label=label, y=0)
            order.append(key)
        return rows[key]

    spans: dict[str, list[tuple[datetime, datetime, TimelineRow]]] = {}
    for result in record.steps:
        if result.started_at is None:
            continue
        finished = result.finished_at or end
        r = row((result.round, result.step_id), f"r{result.round} {result.step_id}")
        r.bars.append(
            Bar(
                x(result.started_at),
                max(1.5, _seconds(result.started_at, finished) * scale),
                "step",
                result.status,
                f"{result.step_id} ({result.kind}) {result.status}, "
                f"{_seconds(result.started_at, finished):.2f}s",
            )
        )
        spans.setdefault(result.step_id, []).append((result.started_at, finished, r))
    started = {(e.round, e.step_id): e.at for e in events if isinstance(e, StepStarted)}
    for rnd, step_id in record.running:
        begun = started.get((rnd, step_id), start)
        r = row((rnd, step_id), f"r{rnd} {step_id}")
        r.bars.append(
            Bar(
                x(begun),
                max(1.5, _seconds(begun, end) * scale),
                "running",
                "running",
                f"{step_id} running",
            )
        )
        spans.setdefault(step_id, []).append((begun, end, r))
    primary = record.spec.model
    for event in events:
        if not isinstance(event, ModelAttempted) or event.outcome == "cached":
            continue
        begun = event.at - timedelta(seconds=event.seconds)
        purpose = event.purpose
        target: TimelineRow | None = None
        if purpose.startswith("step:"):
            for s, f, r in spans.get(purpose[5:], []):
                if s <= event.at <= f or target is None:
                    target = r
        if target is None:
            name = "planner" if purpose == "plan" else purpose.split(":", 1)[0]
            target = row((0, name), name)
        css: str = event.outcome
        if primary and event.model != primary and event.outcome != "error":
            css = "fallback"
        tokens = event.usage.input_tokens + event.usage.output_tokens
        title = f"{event.model} {event.outcome} {event.seconds:.2f}s {tokens} tokens"
        if event.error:
            title += f": {_short(event.error, 120)}"
        waited = min(event.waited, event.seconds)
        if waited > 0:
            why = f"waited {waited:.2f}s for {event.model}'s limits"
            target.bars.append(Bar(x(begun), max(1.5, waited * scale), "call", "wait", why))
            begun += timedelta(seconds=waited)
        width = max(1.5, (event.seconds - waited) * scale)
        target.bars.append(Bar(x(begun), width, "call", css, title))
    order.sort(key=lambda k: (k[0] != 0, k))
    ordered = []
    for i, key in enumerate(order):
        rows[key].y = 24 + i * ROW_H
        ordered.append(rows[key])
    step = _tick_step(total)
    ticks = [Tick(LABEL_W + t * scale, f"{t:g}s") for t in _range(0.0, total, step)]
    return Timeline(ordered, ticks, LABEL_W + PLOT_W + 10, 30 + len(ordered) * ROW_H, total)


def _tick_step(total: float) -> float:
    for step in (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600):
        if total / step <= 10:
            return float(step)
    return 7200.0


def _range(low: float, high: float, step: float) -> list[float]:
    out, value = [], low
    while value <= high + 1e-9:
        out.append(round(value, 6))
        value += step
    return out


@dataclass(frozen=True)
class Highlight:
    """A citation's quote within the retrieved text it came from."""

    citation: Citation
    before: str
    quote: str
    after: str
    found: bool
    """Whether the quote was located in the retrieved chunk (else only the quote shows)."""


def highlight(result: StepResult, citation: Citation, context: int = 300) -> Highlight:
    """The quote of ``citation`` with up to ``context`` characters of its page's text on
    either side, from the chunk the step retrieved."""
    chunk = next((h.chunk for h in result.retrieved if h.chunk.id == citation.chunk_id), None)
    if chunk is not None:
        begin = citation.start - chunk.start
        if not (0 <= begin and chunk.text[begin : begin + len(citation.quote)] == citation.quote):
            begin = chunk.text.find(citation.quote)
        if begin >= 0 and citation.quote:
            end = begin + len(citation.quote)
            return Highlight(
                citation,
                chunk.text[max(0, begin - context) : begin],
                citation.quote,
                chunk.text[end : end + context],
                True,
            )
    return Highlight(citation, "", citation.quote, "", False)
