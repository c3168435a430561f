"""Private ``redis-server`` processes for the Redis tests, and a server that never answers.

The tests never touch a Redis they did not start (one may run on 6379 with someone's
data): each :class:`RedisServer` listens on a free loopback port, keeps nothing on disk
unless asked to, and can be killed and restarted by the fault tests. A missing
``redis-server`` binary fails the tests loudly: the Redis store is part of the product.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
import redis

START_TIMEOUT = 10.0


def free_port(*, cluster_bus: bool = False) -> int:
    """A free loopback port; with ``cluster_bus``, one whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", random.randint(20_000, 45_000) if cluster_bus else 0))
            except OSError:  # a random port that happens to be taken: draw again
                continue
            port = int(s.getsockname()[1])
        if not cluster_bus:
            return port
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail("redis-server is needed for the Redis store tests: apt-get install -y redis-server")
    return found


class RedisServer:
    """One private ``redis-server`` on 127.0.0.1.

    ``durable_dir`` turns on the append-only file (``appendfsync always``), so that a
    server killed with SIGKILL and restarted keeps everything it acknowledged.
    """

    def __init__(self, *, durable_dir: Path | None = None, cluster_dir: Path | None = None) -> None:
        self.binary = redis_server_binary()
        self.port = free_port(cluster_bus=cluster_dir is not None)
        fd, self.logfile = tempfile.mkstemp(prefix=f"redis-{self.port}-", suffix=".log")
        os.close(fd)
        self.durable_dir = durable_dir
        self.cluster_dir = cluster_dir
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0, **options: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"redis://127.0.0.1:{self.port}/{db}" + (f"?{query}" if query else "")

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--logfile", self.logfile]
        if self.durable_dir is None:
            args += ["--appendonly", "no"]
        else:
            args += ["--dir", str(self.durable_dir), "--appendonly", "yes", "--appendfsync", "always"]
        if self.cluster_dir is not None:
            nodes = self.cluster_dir / f"nodes-{self.port}.conf"
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(nodes)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        client = self.client()
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if self.process.poll() is not None:
                    pytest.fail(f"redis-server on port {self.port} exited at start: {self.log()}")
                if time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(
                        f"redis-server on port {self.port} did not answer within {START_TIMEOUT} s: {self.log()}"
                    )
                time.sleep(0.01)
        finally:
            client.close()

    def log(self) -> str:
        with open(self.logfile, errors="replace") as f:
            return f.read()[-2000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no goodbye to clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        with contextlib.suppress(OSError):
            os.unlink(self.logfile)


class LocalCluster:
    """A Redis Cluster of three primaries on loopback, slots split evenly, no replicas."""

    SLOTS = 16384

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.nodes = [RedisServer(cluster_dir=directory) for _ in range(size)]

    def __enter__(self) -> Self:
        try:
            for node in self.nodes:
                node.start()
            clients = [node.client() for node in self.nodes]
            per = self.SLOTS // len(clients)
            for i, client in enumerate(clients):
                last = self.SLOTS - 1 if i == len(clients) - 1 else (i + 1) * per - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)
            for client in clients:  # every pair meets at once: no waiting for gossip
                for node in self.nodes:
                    client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
            deadline = time.monotonic() + START_TIMEOUT
            while not all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients):
                if time.monotonic() > deadline:
                    pytest.fail("the local Redis Cluster did not reach cluster_state:ok")
                time.sleep(0.05)
            for client in clients:
                client.close()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for node in self.nodes:
            node.__exit__()

    def client(self) -> Any:
        from redis.cluster import RedisCluster

        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, socket_timeout=5)


class _Loopback:
    """A TCP server on a free loopback port that hands each connection to ``_serve``."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def url(self, **options: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"redis://127.0.0.1:{self.port}/0" + (f"?{query}" if query else "")

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._sockets.append(conn)
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()
        self.listener.close()


class SilentServer(_Loopback):
    """Accepts connections and never answers: a hung Redis."""

    @property
    def accepted(self) -> list[socket.socket]:
        return self._sockets

    def _serve(self, conn: socket.socket) -> None:
        pass


class ReplyCutter(_Loopback):
    """A relay to a real Redis that can lose one answer: after :meth:`cut_next`, the next
    reply reaches the relay but not the client, whose connection is closed, while Redis
    goes on with everything it was sent (the link to it stays open): the worst moment for
    a connection to die."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.cuts = 0
        self._cut = threading.Event()

    def cut_next(self) -> None:
        self._cut.set()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        self._sockets.append(upstream)
        threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
        threading.Thread(target=self._replies, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                upstream.sendall(data)

    def _replies(self, upstream: socket.socket, client: socket.socket) -> None:
        delivering = True
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if delivering and self._cut.is_set():
                    self._cut.clear()
                    self.cuts += 1
                    delivering = False
                    client.close()
                if delivering:
                    client.sendall(data)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private server for the session; tests get a clean database from ``redis_db``."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session server, flushed before and after the test."""
    client = redis_server.client()
    try:
        client.flushall()
        yield redis_server
        with contextlib.suppress(redis.ConnectionError):
            client.flushall()
    finally:
        client.close()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test alone, with an append-only file, for kill-and-restart tests."""
    with RedisServer(durable_dir=tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server
