"""``terugkeer serve --workers N`` answers a kept-alive connection without Nagle's delay.

uvicorn's own listener for several workers leaves ``TCP_NODELAY`` off on every connection
(Kludex/uvicorn#3149): each answer after the first on a connection then waited about 40 ms for
the client's delayed acknowledgement between its head and its body.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import uvicorn

from terugkeer.web.server import APP_FACTORY, listening_socket
from tests.notify.delivery.test_channels import free_port


def test_the_listener_gives_connections_without_nagle() -> None:
    config = uvicorn.Config(APP_FACTORY, factory=True, port=free_port(), workers=2)
    listener = listening_socket(config)
    assert listener.proto == socket.IPPROTO_TCP

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def accepted(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", config.port)
            result = await asyncio.wait_for(seen, 5)
            writer.close()
        return result

    # in a thread of its own: an earlier test may have left this thread's event loop running
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, accepted_nodelay()).result(timeout=30) != 0


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "TERUGKEER_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    script = Path(sys.executable).parent / "terugkeer"
    server = subprocess.Popen(  # noqa: S603 - our own command
        [str(script), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_until_answering(server, port)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _wait_until_answering(server: subprocess.Popen[bytes], port: int) -> None:
    """Until a worker answers: the parent binds the port before its workers have started."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, "terugkeer serve ended at start"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                conn.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if conn.recv(1024).startswith(b"HTTP/1.1"):
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("terugkeer serve did not answer within 90 s")


def _head_to_body_ms(conn: socket.socket) -> float:
    """One request on a kept-alive connection: ms from the answer's first byte to its last."""
    conn.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = conn.recv(1 << 20)
    first = time.perf_counter()
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(1 << 20)
    return (time.perf_counter() - first) * 1000


def test_kept_alive_answers_are_not_held_back(two_workers: int) -> None:
    with socket.create_connection(("127.0.0.1", two_workers), timeout=10) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        gaps = [_head_to_body_ms(conn) for _ in range(12)]
    # with Nagle on, every answer after the first had its body about 40 ms after its head
    assert statistics.median(gaps) < 20, gaps
