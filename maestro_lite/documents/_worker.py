"""A child process that runs loaders under a time and memory bound.

pypdf is pure Python: on hostile or damaged files it can loop for minutes, recurse until the
interpreter dies, or allocate gigabytes. A thread cannot be stopped, so loaders marked
``isolated`` run here, in one long-lived child (started once, reused for every file). When a
file overruns its time the child is killed and a fresh one starts for the next file; the
batch carries on with a ``DocumentError`` for that file.

The child is a plain ``python -m maestro_lite.documents._parse_process`` talking over two
pipes, not a ``multiprocessing`` process: ``spawn`` would re-import the caller's main module
(and fail in any script without an ``if __name__ == "__main__"`` guard), and ``fork`` is
unsafe in a process that already runs torch or asyncio threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..errors import DocumentError, MaestroError
from .loaders import Loader, ParsedFile

__all__ = ["Duplex", "ParseWorker", "serve"]

_STARTUP_SECONDS = 120.0


def _limit_memory(megabytes: int | None) -> None:
    if megabytes is None:
        return
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def serve(conn: Connection, memory_mb: int | None) -> None:
    """The child's loop: parse what arrives, send back pages or an error description."""
    _limit_memory(memory_mb)
    conn.send(("ready", os.getpid()))  # imports are done: file timeouts start from here
    while True:
        reply: tuple[str, Any]
        try:
            loader, data, path, password = conn.recv()
        except (EOFError, OSError):
            return
        except Exception as exc:  # the loader's class cannot be imported here
            conn.send(
                (
                    "error",
                    (
                        "unsupported",
                        f"its loader cannot run in the parse process: {exc}",
                        "Define isolated loaders in an importable module, not in __main__.",
                    ),
                )
            )
            continue
        try:
            reply = ("ok", loader.parse(data, path=path, password=password))
        except DocumentError as exc:
            # Exceptions with keyword-only constructors do not survive pickling; send fields.
            reply = ("error", (exc.reason, exc.detail, exc.hint))
        except MemoryError:
            reply = ("error", ("too_large", f"needs more than {memory_mb} MB to parse", None))
        except RecursionError:
            reply = ("error", ("malformed", "nested too deeply to parse", None))
        except Exception as exc:
            reply = ("error", ("malformed", f"{type(exc).__name__}: {exc}"[:200], None))
        del data
        conn.send(reply)


class ParseWorker:
    """Runs loaders in a guarded child process.

    Args:
        timeout: Seconds one file may take before the child is killed.
        memory_mb: Address-space limit of the child (Linux and macOS); ``None`` for none.
    """

    def __init__(self, *, timeout: float = 300.0, memory_mb: int | None = 4096) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        # The child must import what the parent can (loaders may live in the caller's code).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        args = [str(to_child_r), str(from_child_w), str(self.memory_mb or 0)]
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", f"{__package__}._parse_process", *args],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._conn = conn = Duplex(from_child_r, to_child_w)
        # Starting Python and importing the package takes a second or more on a busy
        # machine; that must not count against the first file's timeout.
        try:
            if conn.poll(_STARTUP_SECONDS) and conn.recv()[0] == "ready":
                return conn
        except (EOFError, OSError):
            pass
        self._stop()
        raise MaestroError(
            f"the parse process did not start within {_STARTUP_SECONDS:g}s",
            hint="Run `python -m maestro_lite.documents._parse_process` to see why.",
        )

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        self._process = self._conn = None

    def parse(
        self, loader: Loader, data: bytes, *, path: Path, password: str | None = None
    ) -> ParsedFile:
        """Parse ``data`` with ``loader`` in the child; blocks until done or timed out.

        Raises:
            DocumentError: The loader's own errors, ``timeout`` when the file took too long,
                ``crashed`` when the parser took the child process down.
        """
        with self._lock:
            conn = self._conn or self._start()
            try:
                conn.send((loader, data, path, password))
                if not conn.poll(self.timeout):
                    self._stop()
                    raise DocumentError(
                        path,
                        "timeout",
                        f"parsing took longer than {self.timeout:g}s; abandoned",
                        hint="Raise the parse timeout if the file is just large.",
                    )
                status, payload = conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                self._stop()
                raise DocumentError(
                    path, "crashed", "the parser process died on this file"
                ) from None
        if status == "ok":
            assert isinstance(payload, ParsedFile)
            return payload
        reason, detail, hint = payload
        raise DocumentError(path, reason, detail, hint=hint)

    def close(self) -> None:
        """Stop the child process (a later :meth:`parse` starts a new one)."""
        with self._lock:
            self._stop()

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Duplex(Connection):
    """A connection reading one pipe and writing another (``Connection`` wants one fd)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        super().__init__(read_fd, readable=True, writable=False)
        self._writer = Connection(write_fd, readable=False, writable=True)

    def send(self, obj: Any) -> None:
        self._writer.send(obj)

    def close(self) -> None:
        self._writer.close()
        super().close()
