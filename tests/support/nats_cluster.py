"""A three-node NATS JetStream cluster of Debian's `nats-server` on free loopback ports.

Each node has its own client port, route port, store and `server_name`, and routes to the
other two; each runs under a keeper process (`tests.support.keeper`), so it can be killed
and restarted while the test process runs gRPC. A node can be SIGKILLed and restarted on the same ports and store (a crash and
a pod restart), or partitioned away: its config is rewritten without routes, the other
nodes' without the route to it, and every node reloads (SIGHUP), so the route
connections to it close while its clients stay connected to a minority of one. `heal`
restores the routes the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.js.api import StreamInfo

from certwatch.platform.localstack import free_port
from tests.support.keeper import Kept, kept_nats

CLUSTER_NAME = "certwatch"
SIZE = 3
READY_TIMEOUT_S = 60.0


@dataclass
class Node:
    name: str
    store: Path
    port: int
    route_port: int
    config: Path
    server: Kept
    routes_to: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.server.running

    def write_config(self) -> None:
        routes = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in self.routes_to)
        self.config.write_text(
            f'server_name: "{self.name}"\n'
            f"listen: 127.0.0.1:{self.port}\n"
            f'jetstream {{ store_dir: "{self.store}" }}\n'
            f'cluster {{ name: "{CLUSTER_NAME}", listen: 127.0.0.1:{self.route_port},'
            f" routes: [{routes}] }}\n"
        )

    def reload(self) -> None:
        self.server.signal(signal.SIGHUP)


@dataclass
class Cluster:
    nodes: list[Node]

    @property
    def urls(self) -> str:
        """The comma-separated server list `CERTWATCH_NATS_URL` takes."""
        return ",".join(n.url for n in self.nodes)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def kill(self, name: str) -> None:
        self.node(name).server.kill()

    def restart(self, name: str) -> None:
        self.node(name).server.start()

    def partition(self, name: str) -> None:
        """Cut every route to and from `name`; its process and its clients stay up."""
        cut = self.node(name)
        for node in self.nodes:
            node.routes_to = [] if node is cut else [p for p in node.routes_to if p != cut.route_port]
            node.write_config()
            node.reload()

    def heal(self) -> None:
        for node in self.nodes:
            node.routes_to = [n.route_port for n in self.nodes if n is not node]
            node.write_config()
            node.reload()

    def stop(self) -> None:
        for node in self.nodes:
            node.server.stop()


async def stream_info(url: str, stream: str, *, timeout: float = 5.0) -> StreamInfo:
    nc = await nats.connect(url, connect_timeout=timeout, max_reconnect_attempts=0)
    try:
        return await nc.jetstream(timeout=timeout).stream_info(stream)
    finally:
        await nc.close()


async def wait_stream_current(
    cluster: Cluster, stream: str, *, timeout: float = READY_TIMEOUT_S, without: str = ""
) -> StreamInfo:
    """Wait until the stream has a leader and every running node but `without` (one
    partitioned away) holds a current replica, as the first of them sees it; return its info."""
    deadline = time.monotonic() + timeout
    last: object = None
    members = [n for n in cluster.nodes if n.name != without]
    while time.monotonic() < deadline:
        node = next(n for n in members if n.running)
        with contextlib.suppress(Exception):  # no leader yet, or the node is still starting
            info = await stream_info(node.url, stream, timeout=2)
            c = info.cluster
            last = c
            if c is not None and c.leader:
                current = {c.leader} | {r.name for r in c.replicas or [] if r.current and not r.offline}
                if {n.name for n in members if n.running} <= current:
                    return info
        await asyncio.sleep(0.2)
    raise AssertionError(f"stream {stream} not current on every running node within {timeout}s: {last!r}")


@contextlib.contextmanager
def nats_cluster(root: Path) -> Iterator[Cluster]:
    """Start three routed JetStream nodes under `root`; stop them on exit."""
    nodes = []
    for i in range(SIZE):
        name = f"n{i + 1}"
        base = root / name
        base.mkdir(parents=True, exist_ok=True)
        store, port, config = base / "jetstream", free_port(), base / "nats.conf"
        nodes.append(Node(name, store, port, free_port(), config, kept_nats(store, port, config)))
    cluster = Cluster(nodes)
    for node in nodes:
        node.routes_to = [n.route_port for n in nodes if n is not node]
        node.write_config()
    try:
        for node in nodes:
            node.server.start()
        yield cluster
    finally:
        cluster.stop()
