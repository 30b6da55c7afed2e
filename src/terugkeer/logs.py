"""Structured logging. Log lines carry counts, codes and references, never BSNs, names or
contact details (a test scans the log output of the whole test run for them).

``TERUGKEER_LOG_TEE=PATH`` (``Settings.log_tee``) also appends every log line (structlog and
the standard library) to PATH; the test suite uses it to scan what was logged."""

from __future__ import annotations

import copy
import logging
import sys
from typing import Any, TextIO

import structlog

from terugkeer.config import get_settings
from terugkeer.domain.bsn import mask_bsns


class _TeeLogger:
    """Writes each rendered line to the current standard error (resolved at each use, so a
    replaced ``sys.stderr`` in tests and CLI runners is honoured) and to an optional file."""

    def __init__(self, tee: TextIO | None) -> None:
        self._tee = tee

    def msg(self, message: str) -> None:
        message = mask_bsns(message)
        print(message, file=sys.stderr, flush=True)
        if self._tee is not None:
            self._tee.write(message + "\n")
            self._tee.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


_tee_file: TextIO | None = None


def _tee() -> TextIO | None:
    global _tee_file
    path = get_settings().log_tee
    if path and (_tee_file is None or _tee_file.name != path):
        _tee_file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the process
    return _tee_file if path else None


class MaskBsns(logging.Filter):
    """Masks every BSN in a record's message: what the code logs never holds one, but a
    library's line may (a web server's access log of a URL with a BSN typed into it). The
    record keeps its shape (a format and its arguments), which formatters such as uvicorn's
    access formatter take apart."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_bsns(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_bsns(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: mask_bsns(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        # what still prints a BSN (a number as an argument): the message formatted, masked
        message = record.getMessage()
        masked = mask_bsns(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with :class:`MaskBsns` on each of its handlers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"mask_bsns": {"()": f"{__name__}.MaskBsns"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["mask_bsns"]
    return config


class _TeeHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        tee = _tee()
        if tee is not None:
            tee.write(self.format(record) + "\n")
            tee.flush()


def configure(level: str = "info", *, json: bool = False) -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    root = logging.getLogger()
    if not any(isinstance(h, _TeeHandler) for h in root.handlers):
        root.addHandler(_TeeHandler())
    for handler in root.handlers:
        if not any(isinstance(f, MaskBsns) for f in handler.filters):
            handler.addFilter(MaskBsns())
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=lambda *_args: _TeeLogger(_tee()),
        cache_logger_on_first_use=False,
    )
