"""Starting and stopping our own commands as child processes, and reading their JSON logs as they come.

Used by the demo, the benchmarks and the tests: a province on one machine is an axis and
several gateways, each `python -m gateway …` with its stderr collected line by line (a
pipe that nobody drains would stall the child).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from gateway.errors import ServiceError


class Service:
    """A child process whose stderr JSON lines are collected as they come."""

    def __init__(
        self,
        args: list[str],
        *,
        cwd: Path,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        wrapper: Sequence[str] = (),
    ) -> None:
        """``wrapper`` runs the command under another program (a test's setpriv: another group,
        no capabilities, as a service account is)."""
        self.args = args
        self.log_path = log_path
        self.events: list[dict] = []
        self._lines: list[str] = []
        self._lock = threading.Lock()
        environment = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            # -P: never import `gateway` from the working directory (a checkout), only the installed one
            [*wrapper, sys.executable, "-P", "-m", "gateway", *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=environment,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.log_path.open("ab") as log:
            for raw in self.process.stderr:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").strip()
                with self._lock:
                    self._lines.append(line)
                    with contextlib.suppress(ValueError):  # a line that is not JSON is kept as text only
                        self.events.append(json.loads(line))

    def wait_for(self, predicate: Callable[[dict], bool], what: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for event in self.events:
                    if predicate(event):
                        return event
            if self.process.poll() is not None:
                time.sleep(0.2)  # let the reader drain the last lines
                with self._lock:
                    tail = "\n".join(self._lines[-20:])
                raise ServiceError(f"process exited ({self.process.returncode}) while waiting for {what}:\n{tail}")
            time.sleep(0.02)
        with self._lock:
            tail = "\n".join(self._lines[-20:])
        raise ServiceError(f"timed out after {timeout} s waiting for {what}:\n{tail}")

    def events_where(self, predicate: Callable[[dict], bool]) -> list[dict]:
        with self._lock:
            return [e for e in self.events if predicate(e)]

    def event_names(self) -> list[str]:
        with self._lock:
            return [e.get("event", "") for e in self.events]

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def stop(self, timeout: float = 15.0) -> int:
        terminate(self.process, timeout)
        self._reader.join(5)
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._reader.join(5)


def terminate(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, as systemd stops a service; SIGKILL if it has not exited within ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
