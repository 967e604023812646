"""Traces of runs: spans from the event stream, in memory and over OTLP/HTTP to a receiver
on 127.0.0.1."""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="tracing needs the otel extra")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from maestro_lite.errors import ModelConnectionError
from maestro_lite.models import FunctionModel, ModelCall, RetryPolicy
from maestro_lite.orchestrator import Maestro
from maestro_lite.result import RunResult
from maestro_lite.telemetry import RunTracer

from .orchestration.conftest import V1, V2, MemoryRetriever, make_chunk
from .runs.conftest import fix_then_replan_model

TASK = "Compare the two versions"
REQUIREMENTS = ["cover the governing law of both versions"]


def flaky_model() -> FunctionModel:
    """The fix-then-replan model, whose first call for step s1 fails (and is retried)."""
    inner = fix_then_replan_model()
    failed: list[bool] = []

    async def answer(call: ModelCall) -> Any:
        if call.step_id == "s1" and not failed:  # the 2023 version's notice period
            failed.append(True)
            raise ModelConnectionError("connection dropped", model="routed")
        return await inner.request(
            call.messages, json_schema=call.json_schema, settings=call.settings
        )

    return FunctionModel(answer, name="routed")


async def traced_run(tracer: RunTracer, contracts: MemoryRetriever) -> RunResult:
    maestro = Maestro(
        flaky_model(),
        concurrency=2,
        on_event=tracer,
        retry=RetryPolicy(max_retries=2, initial_delay=0.0, jitter=0.0),
    )
    return await maestro.run(TASK, corpus=contracts, requirements=REQUIREMENTS, run_id="t1")


@pytest.fixture
def contracts() -> MemoryRetriever:
    return MemoryRetriever(
        [make_chunk("v1", "Agreement 2023", V1), make_chunk("v2", "Agreement 2025", V2)]
    )


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[RunTracer]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield RunTracer(provider.get_tracer("test"))
    provider.shutdown()


def _parent(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    parent_id = span.parent.span_id if span.parent else None
    return next((s for s in spans if s.context.span_id == parent_id), None)


async def test_a_run_becomes_a_tree_of_genai_spans(
    tracer: RunTracer, exporter: InMemorySpanExporter, contracts: MemoryRetriever
) -> None:
    result = await traced_run(tracer, contracts)
    assert result.status == "passed"
    spans = list(exporter.get_finished_spans())
    names = Counter(s.name.split(" ")[0] for s in spans)
    (run,) = [s for s in spans if s.name == "invoke_agent maestro-lite"]
    assert run.parent is None and run.attributes is not None
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["maestro.status"] == "passed"
    assert len({s.context.trace_id for s in spans}) == 1
    # Three rounds (fix, replan, finish), each with its decision.
    rounds = sorted((s for s in spans if s.name.startswith("round ")), key=lambda s: s.name)
    assert [r.attributes["maestro.decision"] for r in rounds if r.attributes] == [
        "fix",
        "replan",
        "finish",
    ]
    assert all(_parent(r, spans) is run for r in rounds)
    # Every call on the wire is a chat span, the failed one included, with its tokens.
    calls = [s for s in spans if s.name.startswith("chat ")]
    assert len(calls) == sum(1 for e in result.events if e.kind == "model_attempted")
    failed = [c for c in calls if c.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes is not None
    assert failed[0].attributes["error.type"]
    for call in calls:
        assert call.attributes is not None
        assert call.attributes["gen_ai.operation.name"] == "chat"
        assert call.attributes["gen_ai.request.model"] == "routed"
    tokens = sum(int(c.attributes["gen_ai.usage.input_tokens"]) for c in calls if c.attributes)
    assert tokens == result.usage.input_tokens
    # Step calls sit under their step, inside its time; retrieval precedes the first call.
    step_s1 = next(s for s in spans if s.name == "step s1")
    s1_calls = [c for c in calls if _parent(c, spans) is step_s1]
    assert len(s1_calls) == 2  # the dropped connection, then the retry
    assert step_s1.start_time is not None and step_s1.end_time is not None
    assert all(
        c.start_time is not None
        and c.end_time is not None
        and step_s1.start_time <= c.start_time <= c.end_time <= step_s1.end_time
        for c in s1_calls
    )
    retrieval = next(s for s in spans if s.name == "retrieval" and _parent(s, spans) is step_s1)
    assert retrieval.attributes is not None and retrieval.attributes["maestro.retrieval.hits"] > 0
    # Checks: one span per requirement result of each round, under "validate".
    checks = [s for s in spans if s.name.startswith("check ")]
    assert len(checks) == sum(len(r.report.results) for r in result.rounds)
    assert names["validate"] == 3
    assert {_parent(c, spans).name for c in checks} == {"validate"}  # type: ignore[union-attr]
    failing = [c for c in checks if c.attributes and not c.attributes["maestro.check.passed"]]
    assert failing and all(c.status.status_code is StatusCode.ERROR for c in failing)


def test_without_an_endpoint_tracing_is_off() -> None:
    assert RunTracer.from_env({}) is None
    assert RunTracer.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is None
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}
    assert RunTracer.from_env(disabled) is None


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: decodes each POST /v1/traces as protobuf."""

    requests: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append(request)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


async def test_spans_arrive_at_an_otlp_http_receiver(
    receiver: ThreadingHTTPServer,
    contracts: MemoryRetriever,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.server_address[1]}"
    )
    monkeypatch.setenv("OTEL_SERVICE_NAME", "maestro-test")
    tracer = RunTracer.from_env()
    assert tracer is not None
    result = await traced_run(tracer, contracts)
    tracer.shutdown()  # flushes the batch
    spans = {}
    services = set()
    for request in receiver.requests:  # type: ignore[attr-defined]
        for resource_spans in request.resource_spans:
            for attr in resource_spans.resource.attributes:
                if attr.key == "service.name":
                    services.add(attr.value.string_value)
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    spans.setdefault(span.name, []).append(span)
    assert services == {"maestro-test"}
    (run,) = spans["invoke_agent maestro-lite"]
    run_attrs = {a.key: a.value for a in run.attributes}
    assert run_attrs["maestro.run.id"].string_value == "t1"
    assert run_attrs["gen_ai.usage.output_tokens"].int_value == result.usage.output_tokens
    chat = spans["chat routed"][0]
    chat_attrs = {a.key: a.value for a in chat.attributes}
    assert chat_attrs["gen_ai.request.model"].string_value == "routed"
    assert "gen_ai.usage.input_tokens" in chat_attrs
    assert {"round 1", "round 2", "round 3", "step s1", "validate"} <= set(spans)


async def test_cli_handlers_trace_when_an_endpoint_is_set(
    receiver: ThreadingHTTPServer, contracts: MemoryRetriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maestro_lite.cli import _common

    seen: list[str] = []
    _common._tracer.cache_clear()
    assert _common.traced(None) is None  # no endpoint: nothing added
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        f"http://127.0.0.1:{receiver.server_address[1]}/v1/traces",
    )
    _common._tracer.cache_clear()
    try:
        handler = _common.traced(lambda event: seen.append(event.kind))
        assert handler is not None
        await Maestro(fix_then_replan_model(), on_event=handler).run(
            TASK, corpus=contracts, requirements=REQUIREMENTS
        )
        tracer = _common._tracer()
        assert tracer is not None
        tracer.shutdown()
    finally:
        _common._tracer.cache_clear()
    assert seen[0] == "run_started" and seen[-1] == "run_finished"
    names = {
        span.name
        for request in receiver.requests  # type: ignore[attr-defined]
        for rs in request.resource_spans
        for scope in rs.scope_spans
        for span in scope.spans
    }
    assert "invoke_agent maestro-lite" in names
