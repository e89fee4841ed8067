"""Console sign-in through an OpenID Connect provider: the authorization code flow with PKCE,
`state` and `nonce` (authlib), the ID token checked like any token of the provider, the
person recorded, and a console session opened when they hold a grant; without one, a page
says that access must be asked for, and whom to ask. Sign-out ends the session here and,
where the provider offers an end_session_endpoint, there.

What a sign-in under way needs between the redirect and the return (nonce, PKCE verifier,
page asked for) is kept server-side under the hash of its `state`; the browser holds the
state in an HttpOnly cookie, so that a return carrying another browser's state is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
from datetime import timedelta
from typing import Annotated, Any

from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.deprecate import AuthlibDeprecationWarning
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Role
from app.clock import now
from app.config import get_settings
from app.console import sessions
from app.console.sessions import ConsoleUser
from app.console.web import PageRoute, render, templates
from app.db import SessionDep
from app.errors import DomainError, FieldError, Invalid, NotFound, Unauthorized
from app.identity import repository, service
from app.identity.models import ConsoleSignIn, SignInAttempt
from app.identity.providers import HTTP_TIMEOUT, directory
from app.identity.settings import OidcProvider
from app.identity.tokens import verify
from app.schemas import RowId
from app.vendors.models import Vendor

with warnings.catch_warnings():
    # Authlib 1.9 announces a move to httpx2 for this integration; httpx is what we ship.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from authlib.integrations.httpx_client import OAuthError as HttpxOAuthError

router = APIRouter(prefix="/console/connexion", route_class=PageRoute, include_in_schema=False)

KIND = "person"
STATE_COOKIE = "esms_console_oidc"
ATTEMPT_LIFETIME = timedelta(minutes=10)
CALLBACK = "/console/connexion/oidc-retour"


class SignInFailed(Unauthorized):
    code = "sign_in_failed"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def public_url(request: Request) -> str:
    """The service's address as the provider knows it (ESMS_PUBLIC_URL behind a proxy)."""
    settings = get_settings()
    configured = "public_url" in settings.model_fields_set
    return (settings.public_url if configured else str(request.base_url)).rstrip("/")


def redirect_uri(request: Request) -> str:
    return public_url(request) + CALLBACK


def _client(provider: OidcProvider, request: Request) -> AsyncOAuth2Client:
    secret = provider.client_secret.get_secret_value() if provider.client_secret else None
    return AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=secret,
        scope=provider.scopes,
        redirect_uri=redirect_uri(request),
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        timeout=HTTP_TIMEOUT,
    )


def _next(target: str | None) -> str:
    return (
        target if target and target.startswith("/console/") and "//" not in target else "/console"
    )


def sign_in_choices() -> list[OidcProvider]:
    """The providers offered on the sign-in page."""
    return directory().providers


templates.globals["oidc_providers"] = sign_in_choices


@router.get("/oidc/{name}")
async def start(
    name: str,
    request: Request,
    session: SessionDep,
    suite: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    provider = directory().by_name(name)
    if provider is None:
        raise NotFound(f"No sign-in provider {name!r}.")
    metadata = await directory().metadata(provider)
    state, nonce, verifier = generate_token(43), generate_token(32), generate_token(64)
    await session.execute(
        delete(SignInAttempt).where(SignInAttempt.created_at < now() - ATTEMPT_LIFETIME)
    )
    session.add(
        SignInAttempt(
            state_hash=_hash(state),
            provider=provider.name,
            nonce=nonce,
            code_verifier=verifier,
            suite=_next(suite),
        )
    )
    async with _client(provider, request) as client:
        url, _ = client.create_authorization_url(
            metadata["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
        )
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=int(ATTEMPT_LIFETIME.total_seconds()),
        path="/console/connexion",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",  # the provider's redirect back is a top-level GET: the cookie comes
    )
    return response


def _refused(request: Request, message: str, status: int = 401) -> Response:
    return render(
        request,
        "error.html",
        status_code=status,
        title="Connexion impossible",
        message=message,
    )


async def _claims(
    provider: OidcProvider, request: Request, attempt: SignInAttempt, code: str
) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier), check the ID token, add userinfo."""
    metadata = await directory().metadata(provider)
    async with _client(provider, request) as client:
        try:
            token = await client.fetch_token(
                metadata["token_endpoint"],
                code=code,
                code_verifier=attempt.code_verifier,
                redirect_uri=redirect_uri(request),
            )
        except HttpxOAuthError as exc:
            raise SignInFailed(f"The provider refused the code: {exc.description or exc}") from exc
        id_token = token.get("id_token")
        if not id_token:
            raise SignInFailed("The provider sent no ID token.")
        verified = await verify(
            directory(),
            id_token,
            audience=provider.client_id,
            provider=provider,
            nonce=attempt.nonce,
        )
        claims = dict(verified.claims)
        claims["__id_token"] = id_token
        if provider.userinfo and metadata.get("userinfo_endpoint"):
            answer = await client.get(
                metadata["userinfo_endpoint"], headers={"accept": "application/json"}
            )
            if answer.status_code == 200:
                if answer.headers.get("content-type", "").startswith("application/jwt"):
                    info = await verify(
                        directory(), answer.text, audience=provider.client_id, provider=provider
                    )
                    extra = info.claims
                else:
                    extra = answer.json()
                if extra.get("sub") == claims["sub"]:
                    claims.update({k: v for k, v in extra.items() if k not in ("iss", "aud")})
        return claims


def _claim(claims: dict[str, Any], name: str | None) -> str | None:
    value = claims.get(name) if name else None
    if value is None:
        return None
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)[:500]


@router.get("/oidc-retour")
async def callback(
    request: Request,
    session: SessionDep,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=2000)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    expected = request.cookies.get(STATE_COOKIE, "")
    if not state or not expected or not hmac.compare_digest(state, expected):
        return _refused(
            request,
            "Cette connexion n'a pas été demandée depuis ce navigateur, ou a expiré : "
            "recommencez depuis la page de connexion.",
        )
    attempt = (
        await session.execute(
            delete(SignInAttempt)
            .where(SignInAttempt.state_hash == _hash(state))
            .returning(SignInAttempt)
        )
    ).scalar_one_or_none()
    provider = directory().by_name(attempt.provider) if attempt else None
    if attempt is None or provider is None or attempt.created_at < now() - ATTEMPT_LIFETIME:
        return _refused(request, "Cette connexion a expiré : recommencez.")
    if error or not code:
        return _refused(
            request,
            f"Le fournisseur d'identité n'a pas confirmé la connexion ({error or 'sans code'}).",
        )
    try:
        claims = await _claims(provider, request, attempt, code)
    except Unauthorized as exc:
        return _refused(request, f"La connexion est refusée : {exc.detail}")
    person = await repository.record_sign_in(
        session,
        provider.issuer,
        str(claims["sub"]),
        email=_claim(claims, provider.email_claim),
        name=_claim(claims, provider.name_claim),
        organisation=_claim(claims, provider.organisation_claim),
    )
    principal = await service.principal_for_person(session, person.id)
    response: Response
    if principal is None:
        response = render(
            request,
            "access_requested.html",
            person=person,
            provider=provider,
            contact=get_settings().access_contact,
        )
    else:
        value, row = await sessions.open_session(
            session,
            principal,
            kind=KIND,
            subject=str(person.id),
            label=person.email or person.name or person.subject,
        )
        session.add(
            ConsoleSignIn(
                console_session_id=row.id, provider=provider.name, id_token=claims["__id_token"]
            )
        )
        response = RedirectResponse(attempt.suite, status_code=303)
        sessions.set_session_cookie(response, request, value, row.expires_at)
    response.delete_cookie(STATE_COOKIE, path="/console/connexion")
    return response


async def _person_principal(db: AsyncSession, row) -> Any:
    """A person's console session resolves through their grant in force, read at every
    request: a withdrawn grant ends the session at the next page."""
    try:
        return await service.principal_for_person(db, int(row.subject or 0))
    except ValueError:
        return None


sessions.register_resolver(KIND, _person_principal)


async def sign_out_elsewhere(
    db: AsyncSession, user: ConsoleUser, request: Request
) -> Response | None:
    """After sign-out here, the page that sends a person signed in through a provider to its
    end_session_endpoint (with the ID token as hint and the sign-in page as the way back),
    when it offers one; None otherwise.

    A page, not a redirect: the console's Content-Security-Policy (form-action 'self') keeps
    the sign-out form's answer from redirecting to another origin."""
    target = await _end_session_url(db, user, request)
    if target is None:
        return None
    provider = directory().by_name(target[0])
    label = provider.label if provider else target[0]
    return render(request, "signed_out.html", target=target[1], provider=label)


async def _end_session_url(
    db: AsyncSession, user: ConsoleUser, request: Request
) -> tuple[str, str] | None:
    signed = (
        await db.execute(
            select(ConsoleSignIn).where(ConsoleSignIn.console_session_id == user.session_id)
        )
    ).scalar_one_or_none()
    provider = directory().by_name(signed.provider) if signed else None
    if signed is None or provider is None:
        return None
    try:
        endpoint = (await directory().metadata(provider)).get("end_session_endpoint")
    except DomainError:
        return None
    if not endpoint:
        return None
    return provider.name, add_params_to_uri(
        endpoint,
        [
            ("id_token_hint", signed.id_token),
            ("post_logout_redirect_uri", public_url(request) + "/console/connexion"),
            ("client_id", provider.client_id),
        ],
    )


# The access page: people and their grants, for the national team and the ARS ----------------

access_router = APIRouter(prefix="/console/acces", route_class=PageRoute, include_in_schema=False)
GRANTABLE = {
    Role.NATIONAL: ("ars", "grades", "vendor", "national"),
    Role.ARS: ("ars", "grades"),
}


def _managers(user: ConsoleUser) -> None:
    if user.principal.role not in GRANTABLE:
        raise NotFound("Not a page of this role.")


@access_router.get("")
async def people_page(
    request: Request,
    session: SessionDep,
    user: sessions.ConsoleUserDep,
    email: Annotated[str | None, Query(max_length=320)] = None,
) -> Response:
    """Who may use the service: the national team sees everyone, an ARS its region and the
    people waiting for access (the same rules as GET /api/v1/people)."""
    _managers(user)
    rows, total = await repository.list_people(
        session, user.principal, email=email or None, limit=200, offset=0
    )
    vendors = (await session.execute(select(Vendor.siren, Vendor.name).order_by(Vendor.name))).all()
    return render(
        request,
        "people.html",
        user,
        rows=rows,
        total=total,
        email=email or "",
        grantable=GRANTABLE[user.principal.role],
        vendors=vendors,
    )


@access_router.post("/{person_id}/droits")
async def grant_from_console(
    person_id: RowId,
    request: Request,
    session: SessionDep,
    user: sessions.ConsoleUserDep,
    role: Annotated[str, Form(max_length=16)] = "",
    region: Annotated[str, Form(max_length=2)] = "",
    vendor: Annotated[str, Form(max_length=9)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    sessions.check_csrf(user, csrf)
    _managers(user)
    try:
        chosen = Role(role)
    except ValueError:
        raise Invalid(
            "Choose a role.", [FieldError("role", "required", "choisissez un rôle")]
        ) from None
    await service.give_grant(
        session,
        user.principal,
        person_id,
        chosen,
        vendor_siren=vendor or None if chosen is Role.VENDOR else None,
        region_code=region or None if chosen in (Role.ARS, Role.GRADES) else None,
    )
    return RedirectResponse("/console/acces", status_code=303)


@access_router.post("/{person_id}/droits/{grant_id}/retrait")
async def withdraw_from_console(
    person_id: RowId,
    grant_id: RowId,
    request: Request,
    session: SessionDep,
    user: sessions.ConsoleUserDep,
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    sessions.check_csrf(user, csrf)
    _managers(user)
    await service.withdraw(session, user.principal, person_id, grant_id)
    return RedirectResponse("/console/acces", status_code=303)
