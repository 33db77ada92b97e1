"""Bootstrap of the console service: the web console on the service's port (HTTP, not gRPC).

It reads no events and owns two tables (its users, their sessions, shared by every replica); everything it shows comes from the other
services' gRPC APIs, called with the signed-in user's session key.
"""

from __future__ import annotations

from certwatch.console import account_pages, alert_pages, backend, domain_pages, hosting_pages, server
from certwatch.console.live import Pulse
from certwatch.console.sessions import Sessions, SignInLimit
from certwatch.console.web import Console, build_app
from certwatch.platform.service import HttpEdge, Parts, Runtime


async def build(rt: Runtime) -> Parts:
    grpc_services = [name for name in rt.settings.grpc_ports if name != rt.name]
    calls = backend.connect(rt.settings, grpc_services)
    state = Console(rt.pool, calls, Sessions(rt.pool), SignInLimit(), Pulse())
    await state.pulse.subscribe(rt.bus)
    app = build_app(
        state, [*account_pages.ROUTES, *alert_pages.ROUTES, *hosting_pages.ROUTES, *domain_pages.ROUTES]
    )

    def edge(host: str, port: int) -> HttpEdge:
        return server.HttpEdge(app, state, host, port)

    return Parts(http=edge, on_stop=[calls.close])
