"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, with fault injection.

It speaks ``POST /v1/chat/completions`` and ``GET /v1/models`` over real sockets (stdlib
``http.server``, one thread per request), so clients are tested through their real HTTP
stack. What it answers comes from a ``responder`` function; what goes wrong comes from a
fault script or from random fault rates with a fixed seed. It counts requests and the most
requests it ever had in flight at once. A request stops counting as in flight just before
its outcome reaches the client (or, for a ``timeout`` fault, as soon as the client gives
up), so a client that limits its own concurrency can check the limit here exactly.

Example::

    with OpenAICompatibleServer(lambda body: '{"answer": "42"}') as server:
        model = OpenAIModel("test", base_url=server.base_url)
"""

from __future__ import annotations

import json
import random
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from pydantic import BaseModel

from ..models.base import Message, ModelSettings
from ..models.scripted import ModelCall

__all__ = ["Fault", "FaultRates", "OpenAICompatibleServer", "Responder", "responder_from"]

Fault = Literal[
    "ok",
    "429",
    "500",
    "503",
    "401",
    "400",
    "404",
    "timeout",
    "drop",
    "malformed",
    "bad_json",
    "bad_schema",
]
"""What the server does with one request: answer (``ok``), an HTTP error, hang past the
client's timeout (``timeout``), close the connection without answering (``drop``), send a
body that is not JSON (``malformed``), or answer 200 with a well-formed chat completion whose
message is not what was asked for: text that is not JSON (``bad_json``) or a JSON object
that violates the requested schema (``bad_schema``). The last two exercise the client's
re-ask path over real HTTP."""

BAD_JSON = '{"answer": "cut off mid'
"""The message content of a ``bad_json`` fault."""
BAD_SCHEMA = '{"unexpected": "a JSON object that matches no requested schema"}'
"""The message content of a ``bad_schema`` fault."""

Responder = Callable[[dict[str, Any]], str | dict[str, Any]]
"""Maps the request body to the assistant message content (a dict is sent as JSON text)."""


def responder_from(function: Callable[[ModelCall], Any]) -> Responder:
    """A responder from a :class:`~maestro_lite.models.FunctionModel`-style function, so one
    scripted function can drive an in-process model or a real HTTP endpoint.

    The function receives a :class:`ModelCall` rebuilt from the request body (messages, the
    JSON schema of ``response_format``, sampling settings) and returns text, a dict or a
    pydantic object.
    """

    def respond(body: dict[str, Any]) -> str | dict[str, Any]:
        fmt = body.get("response_format") or {}
        schema = fmt.get("json_schema", {}).get("schema") or fmt.get("schema")
        settings = ModelSettings(
            temperature=body.get("temperature"),
            max_tokens=body.get("max_tokens") or body.get("max_completion_tokens"),
            seed=body.get("seed"),
        )
        messages = [Message(role=m["role"], content=m["content"]) for m in body["messages"]]
        reply = function(ModelCall(messages, schema, settings))
        if isinstance(reply, BaseModel):
            return reply.model_dump_json()
        if isinstance(reply, (str, dict)):
            return reply
        raise TypeError(f"a responder must return text, a dict or a model, not {reply!r}")

    return respond


@dataclass
class FaultRates:
    """Random faults, drawn per request from a seeded generator (reproducible)."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_drop: float = 0.0
    rate_malformed: float = 0.0
    rate_bad_json: float = 0.0
    rate_bad_schema: float = 0.0
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self) -> Fault:
        x = self._rng.random()
        for fault, rate in (
            ("429", self.rate_429),
            ("500", self.rate_500),
            ("timeout", self.rate_timeout),
            ("drop", self.rate_drop),
            ("malformed", self.rate_malformed),
            ("bad_json", self.rate_bad_json),
            ("bad_schema", self.rate_bad_schema),
        ):
            if x < rate:
                return fault  # type: ignore[return-value]
            x -= rate
        return "ok"


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (a timeout it gave up on, a run that stopped) is
    what this server is for: no traceback on stderr for it."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` has data or end-of-file to read within ``timeout`` seconds. Through
    ``poll``, not ``select``: select refuses descriptors above 1023, which a process that
    has opened many files (a test session) hands out."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(timeout * 1000))


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the client closed its end (a read would return end-of-file now)."""
    try:
        return _readable(sock, 0) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


@dataclass(eq=False)
class _Exchange:
    """One chat request while the server counts it as in flight."""

    sock: socket.socket
    counted: bool = True


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class OpenAICompatibleServer:
    """An OpenAI-compatible server for tests; use as a context manager.

    Args:
        responder: Computes the reply content from the request body.
        faults: Faults for the first requests, in order; ``ok`` afterwards.
        rates: Random faults for requests beyond ``faults``.
        latency: Seconds each answered request takes (simulates model time).
        hang_seconds: How long a ``timeout`` fault holds the request before closing it.
        retry_after: ``Retry-After`` sent with 429 answers: seconds, or a string sent as
            is (an HTTP date).
        model_ids: Model ids listed by ``GET /v1/models``.
        port: 0 picks a free port.
    """

    def __init__(
        self,
        responder: Responder,
        *,
        faults: Sequence[Fault] = (),
        rates: FaultRates | None = None,
        latency: float = 0.0,
        hang_seconds: float = 5.0,
        retry_after: float | str | None = 0.05,
        model_ids: Sequence[str] = ("test-model",),
        port: int = 0,
    ) -> None:
        self.responder = responder
        self.faults = list(faults)
        self.rates = rates
        self.latency = latency
        self.hang_seconds = hang_seconds
        self.retry_after = retry_after
        self.model_ids = list(model_ids)
        self.requests: list[dict[str, Any]] = []
        """Bodies of every chat request received, faulty ones included."""
        self.outcomes: list[Fault] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._hung: set[_Exchange] = set()
        self._connections: set[socket.socket] = set()
        self._httpd = _QuietServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def answered(self) -> int:
        """Requests that got a real completion."""
        return self.outcomes.count("ok")

    def start(self) -> OpenAICompatibleServer:
        # A short poll interval: stop() waits up to one interval for the loop to notice.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and every client connection, like a server that
        goes away: a client's kept-alive connection is not answered any more (safe to call
        on a server never started)."""
        if self._thread is not None:
            self._httpd.shutdown()  # blocks until serve_forever returns: only if it runs
            self._thread = None
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client

    def __enter__(self) -> OpenAICompatibleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_fault(self) -> Fault:
        with self._lock:
            index = len(self.outcomes)
            if index < len(self.faults):
                fault = self.faults[index]
            elif self.rates is not None:
                fault = self.rates.draw()
            else:
                fault = "ok"
            self.outcomes.append(fault)
            return fault

    def _settle(self, exchange: _Exchange) -> None:
        """Stop counting ``exchange`` as in flight (once)."""
        with self._lock:
            if exchange.counted:
                exchange.counted = False
                self.in_flight -= 1
            self._hung.discard(exchange)

    def _sweep(self) -> None:
        """Settle hung requests whose clients have given up. Runs before a new request is
        counted: a client closes its connection before it starts the next call, so a limit it
        keeps is never seen exceeded because a hung thread has not noticed the close yet."""
        with self._lock:
            hung = list(self._hung)
        for exchange in hung:
            if _peer_closed(exchange.sock):
                self._settle(exchange)

    def _completion(self, body: dict[str, Any], content: str | None = None) -> dict[str, Any]:
        """A chat completion answering ``body``: with ``content``, or the responder's."""
        if content is None:
            reply = self.responder(body)
            content = reply if isinstance(reply, str) else json.dumps(reply)
        prompt = "".join(str(m.get("content", "")) for m in body.get("messages", []))
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "test-model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": _approx_tokens(prompt),
                "completion_tokens": _approx_tokens(content),
                "total_tokens": _approx_tokens(prompt) + _approx_tokens(content),
            },
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._connections.discard(self.connection)
                super().finish()

            exchange: _Exchange | None = None

            def _settle(self) -> None:
                if self.exchange is not None:
                    server._settle(self.exchange)

            def _send(
                self, status: int, payload: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self._settle()  # before the client can see the answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def _error(
                self, status: int, message: str, headers: dict[str, str] | None = None
            ) -> None:
                body = {"error": {"message": message, "type": "test_fault", "code": status}}
                self._send(status, json.dumps(body).encode(), headers)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    data = [
                        {"id": m, "object": "model", "owned_by": "test"} for m in server.model_ids
                    ]
                    self._send(200, json.dumps({"object": "list", "data": data}).encode())
                else:
                    self._error(404, f"no route {self.path}")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._error(404, f"no route {self.path}")
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._error(400, "request body is not JSON")
                    return
                server._sweep()
                exchange = _Exchange(self.connection)
                with server._lock:
                    server.requests.append(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                self.exchange = exchange
                try:
                    self._answer(body)
                finally:
                    self._settle()
                    self.exchange = None

            def _answer(self, body: dict[str, Any]) -> None:
                fault = server._next_fault()
                if server.latency:
                    time.sleep(server.latency)
                match fault:
                    case "ok":
                        self._send(200, json.dumps(server._completion(body)).encode())
                    case "429":
                        headers = {}
                        if server.retry_after is not None:
                            after = server.retry_after
                            headers["Retry-After"] = (
                                after if isinstance(after, str) else f"{after:g}"
                            )
                        self._error(429, "rate limited (injected)", headers)
                    case "500" | "503" | "401" | "400" | "404":
                        self._error(int(fault), f"injected HTTP {fault}")
                    case "timeout":
                        self._hang()
                    case "drop":
                        self.close_connection = True
                        self._settle()
                        self.connection.shutdown(socket.SHUT_RDWR)
                    case "malformed":
                        self._send(200, b'{"id": "chatcmpl-x", "choices": [{"mess')
                    case "bad_json" | "bad_schema":
                        content = BAD_JSON if fault == "bad_json" else BAD_SCHEMA
                        self._send(200, json.dumps(server._completion(body, content)).encode())

            def _hang(self) -> None:
                """Hold the request without answering until the client gives up (or
                ``hang_seconds`` pass), then close the connection."""
                assert self.exchange is not None
                with server._lock:
                    server._hung.add(self.exchange)
                deadline = time.monotonic() + server.hang_seconds
                while time.monotonic() < deadline and not _peer_closed(self.connection):
                    _readable(self.connection, 0.05)
                self._settle()
                self.close_connection = True

        return Handler
