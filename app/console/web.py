"""What every console page shares: templates, the page route (errors as French pages, the
content security policy), static files, and `install(app)`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.clock import to_paris
from app.console.sessions import ConsoleUser, CsrfRefused, SignInRequired
from app.errors import DomainError, FieldError, Invalid

HERE = Path(__file__).parent
# The security headers (content security policy, no framing, no sniffing) are those of every
# HTML answer of the app (app.docs); a page also holds what a session may see: never cached.
PAGE_HEADERS = {"Cache-Control": "no-store"}
log = logging.getLogger("esms.console")


def euros(value: Decimal | int | None) -> str:
    """12 345,67 € (French grouping with a narrow no-break space)."""
    if value is None:
        return "—"
    text = f"{Decimal(value):,.2f}".replace(",", "\u202f").replace(".", ",")
    return f"{text}\u00a0€"


def number(value: Decimal | int | float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = str(value).replace(".", ",")
    if isinstance(value, int) and abs(value) >= 1000:
        text = f"{value:,}".replace(",", "\u202f")
    return f"{text}\u00a0{unit}" if unit else text


def day(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return to_paris(value).strftime("%d/%m/%Y %H:%M")
    return value.strftime("%d/%m/%Y")


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html", "svg"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(euros=euros, number=number, day=day)


def query(base: dict[str, Any], **changes: Any) -> str:
    """A page's query string with some parameters changed (None drops one)."""
    merged = {k: v for k, v in {**base, **changes}.items() if v not in (None, "")}
    return "?" + urlencode(merged) if merged else ""


templates.globals["query"] = query


def render(
    request: Request,
    name: str,
    user: ConsoleUser | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    body = templates.get_template(name).render(request=request, user=user, **context)
    return HTMLResponse(body, status_code=status_code)


class PageRoute(APIRoute):
    """A console page: domain errors become French pages (404, 403, 422), a missing session a
    redirect to sign-in; no answer is cached."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                target = "/console/connexion" + query({"suite": request.url.path})
                response = RedirectResponse(target, status_code=303)
            except CsrfRefused:
                response = render(
                    request,
                    "error.html",
                    status_code=403,
                    title="Formulaire expiré",
                    message="Ce formulaire n'est plus valable : rechargez la page et recommencez.",
                )
            except DomainError as exc:
                response = error_page(request, exc)
            except RequestValidationError as exc:
                errors = [
                    FieldError(".".join(str(p) for p in e["loc"][1:]), e["type"], e["msg"])
                    for e in exc.errors()
                ]
                response = error_page(request, Invalid("Paramètres incorrects.", errors))
            for name, value in PAGE_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page


ERROR_TITLES = {
    400: "Demande incorrecte",
    403: "Action non autorisée",
    404: "Page introuvable",
    409: "Conflit",
    413: "Fichier trop volumineux",
    422: "Demande refusée",
}


def error_page(request: Request, exc: DomainError) -> HTMLResponse:
    user = getattr(request.state, "console_user", None)
    if exc.status == 404:
        message = "Cette page n'existe pas ou ne fait pas partie de votre périmètre."
    else:
        message = exc.detail
    return render(
        request,
        "error.html",
        user=user,
        status_code=exc.status,
        title=ERROR_TITLES.get(exc.status, "Erreur"),
        message=message,
        errors=exc.errors,
    )


def install(app: FastAPI) -> None:
    """Serve the console under /console, its static files, and send / there."""
    from app.console.pages import router

    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console", status_code=307)
