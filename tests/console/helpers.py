"""Signing in to the console from a test, as a person would: the form's CSRF token, then
the token pasted in."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    token = headers["Authorization"].removeprefix("Bearer ")
    form = await client.get("/console/connexion")
    return await client.post(
        "/console/connexion", data={"jeton": token, "csrf": csrf_of(form.text), "suite": "/console"}
    )
