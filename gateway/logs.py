"""Structured logs: one JSON object per line on stderr (journald keeps them), or readable
lines on a terminal. Every event has a snake_case ``event`` name; events about a document
carry ``document_id`` (or ``axis_doc_id``), ``agency`` and ``peer``. Libraries' own log
records, and exceptions nothing caught, are written as JSON lines too. Secrets are never passed to a logger, and any
field whose name says secret is masked as a last line of defence.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

import structlog

_SECRET_WORDS = ("secret", "password", "hash-header", "hash_header", "private")


@functools.lru_cache(maxsize=4096)
def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _mask_secrets(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if _is_secret(key):  # field names repeat: decided once per name
            event[key] = "***"
    return event


def configure(*, json_lines: bool | None = None, level: int = logging.INFO) -> None:
    """Set up structlog once per process; JSON unless stderr is a terminal (or told otherwise)."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json_lines else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,  # log.exception(...) carries its traceback as text
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # What libraries log through the standard library (apscheduler, asyncio, aiohttp) comes out
    # in the same shape, so that a jq pipeline over the journal never meets a plain-text line.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(level, logging.WARNING))  # libraries' info lines are theirs, not an admin's
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], value: BaseException, trace: Any) -> None:
    """An exception nothing caught: one JSON line with its traceback, like every other."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, trace)
        return
    structlog.get_logger(component="process").critical("uncaught_exception", exc_info=(kind, value, trace))


def get(name: str) -> Any:
    return structlog.get_logger(component=name)
