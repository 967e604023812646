"""The one place that imports Ray: connecting to a cluster, and running coroutines on its
nodes with what they open from the settings.

Ray is an optional dependency (extra ``[ray]``); without it, asking for a cluster fails with
one line saying how to install it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from ..errors import UserError
from ..settings import Settings
from .node import Node

ray: Any
try:
    import ray
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    ray = None

__all__ = [
    "bounded",
    "cluster_cpus",
    "connect",
    "disconnect",
    "on_node",
    "ray_available",
    "remote",
    "run_coroutine",
    "run_on_node",
    "submit",
]

T = TypeVar("T")
R = TypeVar("R")

NodeFunction = Callable[..., Awaitable[Any]]
"""``async def fn(node: Node, *args) -> result``: what runs on a cluster node."""

_NAMESPACE = "maestro"


def ray_available() -> bool:
    """Whether Ray is installed."""
    return ray is not None


def _require_ray() -> Any:
    if ray is None:
        raise UserError(
            "running on a Ray cluster needs Ray, which is not installed",
            hint='Install the extra: pip install "maestro-lite[ray]".',
        )
    return ray


def _reachable(address: str, timeout: float = 5.0) -> str | None:
    """Why ``host:port`` takes no connection, or ``None`` when it does. Ray itself retries
    an unreachable address for minutes, printing warnings; this says it in one line."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return "not HOST:PORT"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def connect(address: str) -> None:
    """Connect this process to the Ray cluster whose head is at ``address`` (``HOST:PORT``,
    as ``ray start --head`` printed it, or ``auto``); nothing when it is connected already.

    Raises:
        UserError: Ray is not installed, or nothing answers at ``address``.
    """
    ray_ = _require_ray()
    if ray_.is_initialized():
        return
    if address != "auto" and (problem := _reachable(address)) is not None:
        raise UserError(
            f"cannot reach the Ray cluster at {address!r}: {problem}",
            hint="Start its head with `ray start --head --port=6379` and give that "
            "HOST:PORT (--ray or MAESTRO_RAY_ADDRESS).",
        )
    ray_.init(
        address=address,
        namespace=_NAMESPACE,
        log_to_driver=False,
        configure_logging=False,
    )


def cluster_cpus() -> int:
    """The CPUs of the connected cluster's nodes, all together."""
    return int(_require_ray().cluster_resources().get("CPU", 0))


def disconnect() -> None:
    """Leave the cluster (the cluster keeps running)."""
    if ray is not None and ray.is_initialized():
        ray.shutdown()


# -- on a node -----------------------------------------------------------------------------

_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def _loop() -> asyncio.AbstractEventLoop:
    """This worker process's event loop, kept across its tasks: what a task caches for the
    process (limiters are shared per process, see ``Limiter.from_settings``) stays bound to
    a live loop."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP.is_closed():
            _LOOP = asyncio.new_event_loop()
        return _LOOP


def run_coroutine(coroutine: Awaitable[T]) -> T:
    """Run ``coroutine`` on this worker process's loop (in a Ray task)."""

    async def go() -> T:
        return await coroutine

    return _loop().run_until_complete(go())


def run_on_node(function: NodeFunction, settings: Settings, *args: Any) -> Any:
    """Run ``function(node, *args)`` here, with a :class:`Node` opened from ``settings``
    and closed after. What a Ray task of :func:`submit` executes."""

    async def go() -> Any:
        node = Node(settings)
        try:
            return await function(node, *args)
        finally:
            await node.aclose()

    return run_coroutine(go())


_REMOTES: dict[Callable[..., Any], Any] = {}


def remote(function: Callable[..., Any]) -> Any:
    """``function`` as a Ray remote function (made once per process)."""
    made = _REMOTES.get(function)
    if made is None:
        made = _REMOTES[function] = _require_ray().remote(function)
    return made


def submit(
    function: NodeFunction,
    settings: Settings,
    *args: Any,
    max_retries: int = 3,
    num_cpus: float = 1,
) -> Any:
    """Start ``function(node, *args)`` as a Ray task; its ``ObjectRef``. A task whose worker
    process or node dies is run again elsewhere, up to ``max_retries`` times; one that
    raises is not (the error is the result)."""
    options = {"max_retries": max_retries, "num_cpus": num_cpus, "retry_exceptions": False}
    return remote(run_on_node).options(**options).remote(function, settings, *args)


async def on_node(
    function: NodeFunction, settings: Settings, *args: Any, max_retries: int = 3
) -> Any:
    """``function(node, *args)`` run on the cluster, awaited. Cancelled, the task is
    cancelled too (its worker process stopped).

    Raises:
        Exception: What ``function`` raised (Ray's wrapper is taken off), or the
            ``RayError`` that stopped the task (its node died more than ``max_retries``
            times...).
    """
    ref = submit(function, settings, *args, max_retries=max_retries)
    try:
        return await asyncio.wrap_future(ref.future())
    except asyncio.CancelledError:
        _require_ray().cancel(ref, force=True)
        raise
    except _ray_error() as exc:
        raise _cause(exc) from None


def _ray_error() -> type[Exception]:
    error: type[Exception] = _require_ray().exceptions.RayError
    return error


def _cause(exc: BaseException) -> BaseException:
    """What a task raised, without Ray's wrapper (whose text is a remote traceback)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


async def bounded(
    submit_one: Callable[[T], Any], items: Iterable[T], *, max_in_flight: int
) -> AsyncIterator[tuple[T, Any]]:
    """Submit a Ray task per item (``submit_one(item)`` returns its ``ObjectRef``), at most
    ``max_in_flight`` at once, and yield ``(item, result)`` in the order they finish. A task
    that failed yields its exception as the result, so one bad item does not stop the rest.
    Back-pressure: the next item is submitted only when one in flight finished (``ray.wait``),
    so thousands of items never sit in the cluster's queue at once."""
    if max_in_flight < 1:
        raise ValueError("max_in_flight must be at least 1")
    ray_ = _require_ray()
    pending: dict[Any, T] = {}
    left = iter(items)
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < max_in_flight:
                try:
                    item = next(left)
                except StopIteration:
                    exhausted = True
                else:
                    pending[submit_one(item)] = item
            if not pending:
                return
            ready, _ = await asyncio.to_thread(ray_.wait, list(pending), num_returns=1)
            for ref in ready:
                item = pending.pop(ref)
                try:
                    result = await asyncio.to_thread(ray_.get, ref)
                except _ray_error() as exc:
                    result = _cause(exc)
                yield item, result
    finally:
        for ref in pending:
            ray_.cancel(ref, force=True)
