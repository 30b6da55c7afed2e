"""``terugkeer serve``: the app under uvicorn, in one process or several.

With more than one worker, uvicorn binds the listening socket itself and hands it to each worker
process. It creates that socket with protocol number 0, the accepted connections inherit it, and
asyncio only switches Nagle's algorithm off (``TCP_NODELAY``) on a socket that reports
``IPPROTO_TCP`` (Kludex/uvicorn#3149, open). uvicorn writes a response's head and body in two
writes, so on a kept-alive connection every answer after the first waited for the client's
delayed acknowledgement: about 40 ms on Linux, whatever the request. The listener is re-opened
here on the same descriptor, which the kernel then reports as TCP. (uvloop, uvicorn's loop when
it is installed, as it is from the lock file, sets ``TCP_NODELAY`` whatever the protocol number
says; the fix keeps it so on asyncio's own loop too.)
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

APP_FACTORY = "terugkeer.web.app:create_app"  # each worker process makes its own app


def listening_socket(config: uvicorn.Config) -> socket.socket:
    """The socket uvicorn would bind for ``config``, reporting its real protocol (TCP)."""
    bound = config.bind_socket()
    # with a descriptor and nothing else, family, type and protocol come from the kernel
    listener = socket.socket(fileno=bound.detach())
    listener.set_inheritable(True)  # the worker processes receive it
    return listener


def serve(app: FastAPI, host: str, port: int, workers: int, log_config: dict[str, Any]) -> None:
    """Serve until stopped: ``app`` in this process with one worker, else ``workers`` processes
    that each make their own."""
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_config=log_config)
        return
    config = uvicorn.Config(
        APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_config=log_config
    )
    Multiprocess(config, sockets=[listening_socket(config)]).run()
