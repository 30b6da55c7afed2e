"""A BSN never reaches a log line, whoever writes it: the web server's access log of a URL with
a BSN typed into it is masked like the product's own lines."""

from __future__ import annotations

import io
import logging
import logging.config
from pathlib import Path

import structlog

from terugkeer.config import get_settings
from terugkeer.logs import MaskBsns, configure, uvicorn_log_config

BSN = "999993653"  # passes the 11-proef (test range)


def test_a_library_line_with_a_bsn_is_masked() -> None:
    """Every handler of the root logger masks (the tee file the test run scans is one)."""
    configure("info")
    assert all(any(isinstance(f, MaskBsns) for f in h.filters) for h in logging.root.handlers)
    tee = Path(get_settings().log_tee or "")
    start = tee.stat().st_size
    logging.getLogger("some.library").warning("GET /api/v1/tokens/%s -> %d", BSN, 404)
    structlog.get_logger().info("looked up", ref=f"ref {BSN}")
    logging.getLogger("some.library").warning("a number: %d", int(BSN))
    logging.getLogger("some.library").warning("not a BSN: %s", "123456789")
    with tee.open(encoding="utf-8") as fh:
        fh.seek(start)
        written = fh.read()
    assert BSN not in written
    assert written.count("******653") == 3
    assert "not a BSN: 123456789" in written


def test_uvicorns_access_log_masks_a_bsn_in_the_url() -> None:
    config = uvicorn_log_config()
    logging.config.dictConfig(config)
    access = logging.getLogger("uvicorn.access")
    stream = io.StringIO()
    for handler in access.handlers:  # uvicorn's handler, writing to a stream we can read
        assert any(isinstance(f, MaskBsns) for f in handler.filters)
        handler.setStream(stream)  # type: ignore[attr-defined]
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/api/v1/x/{BSN}", "1.1", 404)
    line = stream.getvalue()
    assert "/api/v1/x/******653" in line
    assert BSN not in line
