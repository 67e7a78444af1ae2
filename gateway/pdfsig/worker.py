"""PDFs are read in a child process with a memory cap and a deadline (PDF bombs: object
streams that inflate to gigabytes, nesting thousands deep, cross-reference loops): such a PDF
costs that process, which is started again, and gets a verdict saying so; the gateway's own
process, its memory and its event loop are untouched.

One child, one PDF at a time, kept between PDFs (starting it and importing pyHanko costs
about half a second). The child limits its own address space (RLIMIT_AS) before reading
anything; the parent kills it when it takes longer than the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import resource
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.pdfsig.verdict import PdfReport, plainly_not_a_pdf

MEMORY_BYTES = 1536 * 1024 * 1024
TIMEOUT_SECONDS = 30.0


def _serve(connection: Any, memory_bytes: int) -> None:
    """The child: read requests, answer reports, until the pipe closes."""
    # Lowering one's own limit needs no privilege; a sandbox that forbids even that leaves the
    # child bounded by the service's cgroup (MemoryMax=), whose OOM killer takes the largest: it.
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    from gateway.pdfsig.inspect import inspect

    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        try:
            report = inspect(**request)
        except MemoryError:
            report = PdfReport(problem=f"reading the PDF needs more than {memory_bytes // 2**20} MiB", transient=True)
        except Exception as exc:  # a verdict, whatever the PDF did to the reader
            report = PdfReport(problem=f"the PDF cannot be read: {type(exc).__name__}: {exc}")
        try:
            connection.send(report)
        except (BrokenPipeError, OSError):
            return


class PdfInspector:
    """The parent's side: one PDF at a time through the child, with its deadline."""

    def __init__(self, *, memory_bytes: int = MEMORY_BYTES, timeout: float = TIMEOUT_SECONDS) -> None:
        self.memory_bytes = memory_bytes
        self.timeout = timeout
        self._context = multiprocessing.get_context("spawn")  # no copy of the gateway's threads and sockets
        self._process: Any = None
        self._connection: Any = None
        self._lock = threading.Lock()
        self._used_at = 0.0  # monotonic: when the child last read a PDF

    def stop_if_idle(self, seconds: float) -> None:
        """Let the child go after ``seconds`` without a PDF (housekeeping, on the event loop: a
        PDF being read right now means it is not idle, and nothing waits for it)."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._process is not None and time.monotonic() - self._used_at > seconds:
                self._stop()
        finally:
            self._lock.release()

    async def inspect(self, data: bytes, **facts: Any) -> PdfReport:
        # what is plainly no PDF is judged on the loop: two slices of bytes cost less than the
        # hand-off to a thread (most attachments of an exchange are not PDFs at all)
        plainly = plainly_not_a_pdf(data)
        if plainly is not None:
            return PdfReport(problem=plainly)
        return await asyncio.to_thread(self.inspect_now, data, **facts)

    def inspect_now(
        self,
        data: bytes,
        *,
        anchors: Sequence[bytes],
        intermediates: Sequence[bytes] = (),
        crls: Sequence[bytes] = (),
        at: datetime,
    ) -> PdfReport:
        request = {
            "data": data,
            "anchors": list(anchors),
            "intermediates": list(intermediates),
            "crls": list(crls),
            "at": at,
        }
        plainly = plainly_not_a_pdf(data)
        if plainly is not None:  # no child for what is plainly no PDF
            return PdfReport(problem=plainly)
        with self._lock:
            self._used_at = time.monotonic()
            if self._process is None or not self._process.is_alive():
                self._start()
            try:
                self._connection.send(request)
                if not self._connection.poll(self.timeout):
                    self._stop()
                    return PdfReport(problem=f"reading the PDF took longer than {self.timeout:.0f} s", transient=True)
                return self._connection.recv()
            except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
                self._stop()
                return PdfReport(
                    problem=f"the process reading the PDF ended (more than {self.memory_bytes // 2**20} MiB?)",
                    transient=True,
                )

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child, self.memory_bytes), name="edxml-pdf", daemon=True)
        process.start()
        child.close()
        self._process, self._connection = process, parent

    def _stop(self) -> None:
        process, connection, self._process, self._connection = self._process, self._connection, None, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()
        if process is not None:
            process.kill()
            process.join(5)

    def close(self) -> None:
        with self._lock:
            self._stop()
