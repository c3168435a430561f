"""Serving an ASGI app with uvicorn next to the monitor, and stopping both cleanly.

uvicorn normally installs its own SIGINT/SIGTERM handlers and re-raises the signal once
it has shut down, which would end the process with a KeyboardInterrupt halfway through
the monitor's final flush. Here the command owns the signals: the first one asks uvicorn
to finish its requests and stop, the command then stops the monitor (flushing what is
buffered) and exits 0; a second one forces uvicorn to stop at once.
"""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import anyio

from ._common import CliError

__all__ = ["bind", "have_uvicorn", "serve_until_signal", "url_of"]


def have_uvicorn() -> bool:
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        return False
    return True


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before uvicorn starts so a busy port is one clear line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host!r}: {exc.strerror}; pass --host 127.0.0.1 or another address") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = "pass --port 0 for any free port, or another --port" if port else "pass another --host"
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {hint}") from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    if host in ("0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def _server(app: Any, *, verbose: int) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn without its own signal handling (see the module docstring)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def install_signal_handlers(self) -> None:  # uvicorn < 0.29
            pass

    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="info" if verbose else "warning",
        access_log=verbose > 0,
        server_header=False,
    )
    return Server(config)


async def serve_until_signal(
    app: Any,
    sock: socket.socket | None,
    *,
    verbose: int = 0,
    background: tuple[Callable[[], Coroutine[Any, Any, None]], ...] = (),
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` on ``sock`` with ``background`` tasks until SIGINT or SIGTERM.

    Returns after uvicorn has finished its requests and the background tasks were
    cancelled (each cleans up on cancellation: the monitor flushes).
    """
    server = _server(app, verbose=verbose) if sock is not None else None

    async with anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    if on_stop is not None:
                        on_stop()
                    if server is None:
                        tg.cancel_scope.cancel()
                    elif server.should_exit:
                        server.force_exit = True
                    else:
                        server.should_exit = True

        tg.start_soon(watch_signals)
        for task in background:
            tg.start_soon(task)
        if server is not None:
            await server.serve(sockets=[sock])
            tg.cancel_scope.cancel()
