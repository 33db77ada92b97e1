"""Ports for test and local servers come from below the kernel's ephemeral range, where no
outgoing connection's local port can take them between the choice and the server's bind."""

from __future__ import annotations

import socket
from pathlib import Path

from certwatch.platform.localstack import free_port


def test_ports_are_chosen_below_the_ephemeral_range_and_are_free() -> None:
    ephemeral_start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    if ephemeral_start > 10000:
        assert all(10000 <= p < ephemeral_start for p in ports), ports
    assert len(set(ports)) == len(ports)  # never the same port to two callers of one process
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # free when handed out
