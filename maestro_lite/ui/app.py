"""The dashboard's web application (Starlette): pages rendered on the server from the run
store and the schedule store, live updates over server-sent events, and a few actions.

Every page is HTML from Jinja templates with autoescaping on and a finalizer that masks
secrets, so document text, file names and quotes render as text. Scripts and styles are
files shipped in the package (a strict Content-Security-Policy allows nothing else).
"""

from __future__ import annotations

import asyncio
import functools
import json
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._format import duration
from ..errors import MaestroError, RunNotFound, UserError
from ..events import Event, ModelAttempted, RoundFinished, RunFinished, StepFinished
from ..runs import FINISHED, RunQuery, cancel_run, open_run_store
from ..scheduling import Job, JobRunner, default_runners, open_schedule_store, typed_job
from ..settings import Settings
from . import actions, views
from .security import COOKIE, Guard, Redactor

__all__ = ["DashboardConfig", "create_app"]

_HERE = Path(__file__).parent
_Sent = tuple[str, dict[str, Any], int | None]
"""A server-sent event: its name, its data (sent as JSON), and its id."""
_STATES = ("running", "interrupted", "passed", "unmet", "failed")
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class DashboardConfig:
    """What one dashboard serves, and how.

    Attributes:
        settings: Where the run store (``settings.runs_db``, or PostgreSQL at
            ``settings.database_url``) and corpora are.
        host: The address served (loopback unless a token is set).
        token: ``MAESTRO_UI_TOKEN``; required by every request when set.
        poll: Seconds between looks at the store for live updates.
        page_size: Runs per page of the runs list.
        launcher: Starts a ``maestro`` command in the background (for resume); the default
            runs it as a detached process. Tests pass a recorder.
    """

    settings: Settings
    host: str = "127.0.0.1"
    token: str | None = None
    poll: float = 0.5
    page_size: int = 50
    corpora: bool = True
    """Show the corpora on the operations page (opens the vector store)."""
    launcher: actions.Launcher = field(default=actions.launch)
    runners: dict[str, JobRunner[Any]] = field(default_factory=default_runners)
    """The runners that type the jobs shown (a stored job is a kind and parameters)."""
    job_parser: actions.JobParser | None = None
    """Reads the command line of a job submitted from the operations page (``maestro ui``
    passes the CLI's); without one, submitting is refused."""


class _Security:
    """ASGI middleware applying the :class:`Guard`: Host, token, cross-site checks, headers."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        host = request.headers.get("host", "")
        denial: Response | None = None
        if not self.guard.host_allowed(host):
            denial = PlainTextResponse("unknown Host: open the address `maestro ui` printed", 421)
        elif not self.guard.token_ok(self._token(request)):
            denial = PlainTextResponse(
                "a token is needed: open the address `maestro ui` printed (it ends with "
                "?token=...), or send Authorization: Bearer <MAESTRO_UI_TOKEN>",
                401,
            )
        elif request.method not in ("GET", "HEAD") and not self.guard.same_site(
            request.headers.get("origin"), request.headers.get("sec-fetch-site"), host
        ):
            denial = PlainTextResponse("cross-site request refused", 403)
        elif request.method == "GET" and "token" in request.query_params and self.guard.token:
            # Trade the token in the address for a cookie, and drop it from the address.
            query = urlencode(
                [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            )
            denial = RedirectResponse(request.url.path + (f"?{query}" if query else ""), 303)
            denial.set_cookie(COOKIE, self.guard.token, httponly=True, samesite="strict")
        if denial is not None:
            await self._secured(denial)(scope, receive, send)
            return
        await self.app(scope, receive, self._with_headers(send))

    @staticmethod
    def _token(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.query_params.get("token") or request.cookies.get(COOKIE)

    @staticmethod
    def _headers() -> list[tuple[bytes, bytes]]:
        return [
            (b"content-security-policy", _CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
            (b"cache-control", b"no-store"),
        ]

    def _secured(self, response: Response) -> ASGIApp:
        for name, value in self._headers():
            response.headers[name.decode()] = value.decode()
        return response

    def _with_headers(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self._headers()]
            await send(message)

        return wrapped


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def event_line(event: Event) -> str:
    """One line saying what an event was, for the live log."""
    match event:
        case ModelAttempted():
            return f"{event.purpose}: {event.model} {event.outcome} in {event.seconds:.2f}s"
        case StepFinished():
            return f"step {event.step_id} finished (round {event.round})"
        case RoundFinished():
            return f"round {event.round}: {event.decision.action}: {event.decision.reason}"
        case RunFinished():
            return f"run {event.status}"
    step = getattr(event, "step_id", None)
    return event.kind.replace("_", " ") + (f" {step}" if step else "")


def _describe(job: Job, *, runners: Mapping[str, JobRunner[Any]]) -> str:
    return typed_job(job, runners).describe()


def create_app(config: DashboardConfig) -> Starlette:
    """The dashboard over the stores ``config.settings`` name."""
    guard = Guard(token=config.token, host=config.host)
    redact = Redactor(extra=(config.token,) if config.token else ())

    def finalize(value: Any) -> Any:
        return redact(value) if isinstance(value, str) else value

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        finalize=finalize,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    env.filters["duration"] = duration
    env.filters["describe"] = functools.partial(_describe, runners=config.runners)
    env.globals["csrf"] = guard.csrf
    query = RunQuery.open(config.settings)
    runs = open_run_store(config.settings)
    schedules = open_schedule_store(config.settings)

    def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code)

    async def off_loop(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def runs_list(request: Request) -> Response:
        params = request.query_params
        status = params.get("status") or None
        if status not in (None, *_STATES):
            return render("error.html", 400, message=f"unknown status {status!r}")
        try:
            page_no = max(1, int(params.get("page", "1")))
        except ValueError:
            return render("error.html", 400, message="page must be a number")
        size = config.page_size
        page = await off_loop(
            query.page,
            status=status,
            search=params.get("q") or None,
            corpus=params.get("corpus") or None,
            offset=(page_no - 1) * size,
            limit=size,
        )
        keep = {k: v for k, v in params.items() if k in ("status", "q", "corpus") and v}

        def link(n: int) -> str:
            return "/?" + urlencode({**keep, "page": n})

        pages = max(1, -(-page.total // size))
        count, latest = await off_loop(query.changed)
        template = "_runs_table.html" if params.get("fragment") else "runs.html"
        return render(
            template,
            page=page,
            page_no=page_no,
            pages=pages,
            prev=link(page_no - 1) if page_no > 1 else None,
            next=link(page_no + 1) if page_no < pages else None,
            filters=keep,
            states=_STATES,
            corpora=await off_loop(query.corpora),
            since=f"{count}|{latest}",
        )

    async def run_context(run_id: str) -> dict[str, Any]:
        record = await off_loop(runs.get, run_id)
        events = await off_loop(runs.events, run_id)
        results = views.latest_results(record)
        running = {sid for _, sid in record.running}
        plans = [(p, views.dag(p.plan, results, running)) for p in reversed(record.plans)]
        steps = {s.id: s for p in record.plans for s in p.plan.steps}  # the latest plan's last
        details = [(r, steps.get(r.step_id)) for r in record.steps]
        last = max(record.reports) if record.reports else None
        return {
            "record": record,
            "summary": record.summary,
            "plans": plans,
            "timeline": views.timeline(record, events, now=datetime.now(UTC)),
            "details": details,
            "requirements": record.reports.get(last, []) if last is not None else [],
            "report_round": last,
            "rounds": record.rounds,
            "live": record.status == "running",
            "resumable": record.status not in FINISHED,
            "last_seq": len(events),
        }

    async def run_page(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            context = await run_context(run_id)
        except RunNotFound:
            return render("error.html", 404, message=f"no run {run_id!r}")
        name = "_run_body.html" if request.query_params.get("fragment") else "run.html"
        return render(name, **context)

    async def step_page(request: Request) -> Response:
        """One step's queries, output, citations, evidence and attempts (loaded when its
        section is opened, so a run of 1,000 steps does not send them all at once)."""
        run_id, step_id = request.path_params["run_id"], request.path_params["step_id"]
        try:
            rnd = int(request.path_params["round"])
            record = await off_loop(runs.get, run_id)
        except (ValueError, RunNotFound):
            return PlainTextResponse("no such run", 404)
        result = record.step(step_id, rnd)
        if result is None:
            return PlainTextResponse("no such step", 404)
        steps = {s.id: s for p in record.plans for s in p.plan.steps}
        highlights = [views.highlight(result, c) for c in result.citations]
        return render("_step.html", result=result, step=steps.get(step_id), highlights=highlights)

    async def sse(
        events: AsyncIterator[_Sent],
    ) -> AsyncIterator[str]:
        async for kind, data, seq in events:
            head = f"id: {seq}\n" if seq is not None else ""
            yield f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"

    async def run_stream(request: Request) -> Response:
        """The run's new events as server-sent events; ``end`` once it stopped."""
        run_id = request.path_params["run_id"]
        if await off_loop(query.status, run_id) is None:
            return PlainTextResponse("no such run", 404)
        try:
            after = request.headers.get("last-event-id") or request.query_params.get("after")
            seq = int(after or 0)
        except ValueError:
            seq = 0

        async def events() -> AsyncIterator[_Sent]:
            nonlocal seq
            quiet = 0.0
            while not await request.is_disconnected():
                new = await off_loop(query.events_after, run_id, seq)
                for s, event in new:
                    seq = s
                    yield (
                        "run",
                        {"seq": s, "kind": event.kind, "line": redact(event_line(event))},
                        s,
                    )
                status = await off_loop(query.status, run_id)
                if not new and status != "running":
                    yield "end", {"status": status}, None
                    return
                quiet = 0.0 if new else quiet + config.poll
                if quiet >= 15:
                    yield "ping", {}, None
                    quiet = 0.0
                await asyncio.sleep(config.poll)

        return StreamingResponse(sse(events()), media_type="text/event-stream")

    async def runs_stream(request: Request) -> Response:
        """``changed`` whenever a run is added or records an event (the list refreshes),
        counting from the state the page showed (``since``), so nothing between rendering
        the page and opening the stream is missed."""
        count, _, latest = request.query_params.get("since", "").partition("|")

        async def events() -> AsyncIterator[_Sent]:
            last = (int(count), latest) if count.isdigit() else await off_loop(query.changed)
            while not await request.is_disconnected():
                await asyncio.sleep(config.poll)
                now = await off_loop(query.changed)
                if now != last:
                    last = now
                    yield "changed", {"runs": now[0]}, None

        return StreamingResponse(sse(events()), media_type="text/event-stream")

    async def operations(request: Request) -> Response:
        data = await off_loop(
            actions.operations, schedules, config.settings, corpora=config.corpora
        )
        return render("operations.html", **data)

    async def performance(request: Request) -> Response:
        try:
            days = min(365, max(1, int(request.query_params.get("days", "30"))))
        except ValueError:
            return render("error.html", 400, message="days must be a number")
        perf = await off_loop(query.performance, days=days)
        return render("performance.html", perf=perf, days=days)

    def action(
        fn: Callable[[Request, dict[str, str]], Awaitable[tuple[str, str]]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            form = await request.form()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            await form.close()
            if not guard.csrf_ok(fields.get("csrf")):
                return render(
                    "error.html",
                    403,
                    message="the form is stale or came from "
                    "another site (CSRF check failed); reload the page and try again",
                )
            try:
                message, back = await fn(request, fields)
            except MaestroError as exc:
                return render("error.html", 400, message=str(exc), hint=exc.hint)
            return render("done.html", message=message, back=back)

        return handler

    async def resume(request: Request, form: dict[str, str]) -> tuple[str, str]:
        run_id = request.path_params["run_id"]
        message = await off_loop(
            actions.resume_run, runs, run_id, config.launcher, home=config.settings.home
        )
        return message, f"/runs/{run_id}"

    async def cancel(request: Request, form: dict[str, str]) -> tuple[str, str]:
        run_id = request.path_params["run_id"]
        return await off_loop(cancel_run, runs, run_id), f"/runs/{run_id}"

    async def pause(request: Request, form: dict[str, str]) -> tuple[str, str]:
        name, verb = request.path_params["name"], request.path_params["verb"]
        if verb not in ("pause", "resume"):
            raise UserError(f"unknown action {verb!r} on schedule {name!r}")
        paused = verb == "pause"
        return await off_loop(actions.pause_schedule, schedules, name, paused), "/operations"

    async def submit(request: Request, form: dict[str, str]) -> tuple[str, str]:
        try:
            args = shlex.split(form.get("job", ""))
        except ValueError as exc:
            raise actions.bad_job(str(exc)) from None
        return (
            await off_loop(
                actions.submit_job, schedules, form.get("name", ""), args, config.job_parser
            ),
            "/operations",
        )

    async def close() -> None:
        query.close()
        runs.close()
        schedules.close()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await close()

    app = Starlette(
        routes=[
            Route("/", runs_list),
            Route("/runs/{run_id}", run_page),
            Route("/runs/{run_id}/stream", run_stream),
            Route("/runs/{run_id}/steps/{round}/{step_id}", step_page),
            Route("/stream/runs", runs_stream),
            Route("/operations", operations),
            Route("/performance", performance),
            Route("/runs/{run_id}/resume", action(resume), methods=["POST"]),
            Route("/runs/{run_id}/cancel", action(cancel), methods=["POST"]),
            Route("/schedules/{name}/{verb:str}", action(pause), methods=["POST"]),
            Route("/jobs", action(submit), methods=["POST"]),
            Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(_Security, guard=guard)
    return app
