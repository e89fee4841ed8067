"""The interactive API docs served with no network (their assets come from an installed
package, never from a CDN), and the security headers of every answer."""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Swagger UI and ReDoc bundles, shipped by the fastapi-offline package.
VENDORED = Path(fastapi_offline.__file__).resolve().parent / "static"
OURS = Path(__file__).resolve().parent / "docs_assets"
ASSETS = "/docs/assets"

# HTML pages: nothing from another origin, no inline script or style, not framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# ReDoc builds its styles at run time into <style> elements (styled-components) and runs its
# search in a worker made from its own code (a blob: URL): its page alone allows both. It has
# no "try it out", so it never holds a token; scripts still come from the app only.
REDOC_CONTENT_SECURITY_POLICY = (
    CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    + "; worker-src blob:"
)
_EVERY_ANSWER = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_HTML_ANSWER = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeadersMiddleware:
    """`X-Content-Type-Options` and `Referrer-Policy` on every answer; on HTML ones, the
    Content-Security-Policy above (unless the page set its own) and no framing."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                added = list(_EVERY_ANSWER)
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    added += _HTML_ANSWER
                headers += [(name, value) for name, value in added if name not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _page(title: str, head: str, body: str, policy: str | None = None) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="{ASSETS}/vendored/favicon.png">{head}</head>'
        f"<body>{body}</body></html>\n",
        headers={"Content-Security-Policy": policy} if policy else None,
    )


def install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc (ReDoc) on the app's own openapi.json and assets. The
    app must be built with docs_url=None and redoc_url=None."""
    app.mount(f"{ASSETS}/vendored", StaticFiles(directory=VENDORED), name="docs-vendored")
    app.mount(ASSETS, StaticFiles(directory=OURS), name="docs-assets")
    spec = html.escape(app.openapi_url or "/openapi.json")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = html.escape(request.scope.get("root_path", ""))
        return _page(
            f"{app.title} – Swagger UI",
            f'<link rel="stylesheet" href="{root}{ASSETS}/vendored/swagger-ui.css">',
            f'<div id="swagger-ui" data-url="{root}{spec}"></div>'
            f'<script src="{root}{ASSETS}/vendored/swagger-ui-bundle.js"></script>'
            f'<script src="{root}{ASSETS}/swagger-init.js"></script>',
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = html.escape(request.scope.get("root_path", ""))
        return _page(
            f"{app.title} – ReDoc",
            "",
            f'<redoc spec-url="{root}{spec}"></redoc>'
            f'<script src="{root}{ASSETS}/vendored/redoc.standalone.js"></script>',
            REDOC_CONTENT_SECURITY_POLICY,
        )
