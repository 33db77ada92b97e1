"""Cross-origin request protection for every state-changing request, as Go 1.25's
`http.CrossOriginProtection` and Datasette do it: a browser says where a request comes from
(`Sec-Fetch-Site`, else `Origin`); anything but this origin is refused with 403. A request
with neither header is not a browser's cross-site form post (browsers send at least one on
every POST), so it passes: the session cookie is SameSite=Strict besides."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def refusal(method: str, headers: Headers) -> str | None:
    """Why the request is refused, or None."""
    if method in SAFE_METHODS:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None:
        return (
            None
            if site in ("same-origin", "none")
            else f"cross-origin request refused (Sec-Fetch-Site: {site})"
        )
    origin = headers.get("origin")
    if origin is None:
        return None
    if origin == "null" or urlsplit(origin).netloc != headers.get("host"):
        return f"cross-origin request refused (Origin {origin} is not this site)"
    return None


class CrossOriginProtection:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            why = refusal(scope["method"], Headers(scope=scope))
            if why is not None:
                await PlainTextResponse(why, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
