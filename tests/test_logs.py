"""Every line on stderr is one JSON object, whoever wrote it: our loggers, a library logging
through the standard library (apscheduler's "job raised an exception"), an uncaught exception."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import structlog

from gateway import logs


def lines_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_library_error_with_its_traceback_is_one_json_line(capsys):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook)
    # configured here, structlog would print to capsys's stream after it is closed: a later test
    # of this worker that logs would fail with "I/O operation on closed file"
    saved_structlog = structlog.get_config()
    try:
        logs.configure(json_lines=True)
        try:
            raise RuntimeError("job cancelled")
        except RuntimeError:
            logging.getLogger("apscheduler.executors.default").exception("Job 'push' raised an exception")
        logging.getLogger("aiohttp.access").info("an access line nobody asked for")
        logs.get("gateway").warning("our_event", secret_file="s3cr3t")
        (library, ours) = lines_of(capsys.readouterr().err)
    finally:
        root.handlers, root.level, sys.excepthook = saved
        structlog.configure(**saved_structlog)
    assert library["level"] == "error" and library["logger"] == "apscheduler.executors.default"
    assert "RuntimeError: job cancelled" in library["exception"] and library["event"].startswith("Job 'push'")
    assert ours["event"] == "our_event" and ours["secret_file"] == "***"


def test_an_uncaught_exception_is_a_json_line_not_a_plain_traceback():
    program = "from gateway import logs; logs.configure(json_lines=True); raise ValueError('nobody caught me')"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    (line,) = lines_of(result.stderr)
    assert result.returncode == 1 and line["event"] == "uncaught_exception"
    assert "ValueError: nobody caught me" in line["exception"]
