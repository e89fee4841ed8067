"""The docs work with no network and every answer carries the security headers: /docs and
/redoc take every asset from the app itself, HTML answers forbid any other origin and any
inline script or style, and nothing says which server runs."""

from __future__ import annotations

import re

import pytest

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


# ReDoc writes its styles into <style> elements and searches in a worker of its own code.
REDOC_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + (
    "; worker-src blob:"
)


@pytest.mark.parametrize(
    ("page", "element", "policy"),
    [("/docs", "swagger-ui", CSP), ("/redoc", "<redoc", REDOC_CSP)],
)
async def test_the_docs_take_their_assets_from_the_app(client, page, element, policy):
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == policy
    assert response.headers["x-content-type-options"] == "nosniff"
    text = response.text
    assert element in text
    assert "http:" not in text and "https:" not in text and "//" not in text
    assert "style=" not in text and "<style" not in text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", text, re.S)
    assert scripts and all(body == "" and "src=" in attrs for attrs, body in scripts), scripts
    assets = re.findall(r'(?:src|href|data-url|spec-url)="([^"]+)"', text)
    assert len(assets) >= 3
    for asset in assets:
        assert asset.startswith("/"), asset
        fetched = await client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 100, asset
        if asset.endswith(".js"):
            assert "javascript" in fetched.headers["content-type"], asset
        if asset.endswith(".css"):
            assert fetched.headers["content-type"].startswith("text/css"), asset


async def test_swagger_ui_asks_no_other_origin(client):
    init = await client.get("/docs/assets/swagger-init.js")
    assert init.status_code == 200
    assert "validatorUrl: null" in init.text  # the default loads a badge from another origin


@pytest.mark.parametrize("path", ["/live", "/openapi.json", "/api/v1/vendors", "/nowhere"])
async def test_every_answer_carries_the_security_headers(client, path):
    response = await client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers
    assert "x-powered-by" not in response.headers


async def test_the_metrics_say_nothing_of_the_interpreter(client):
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "esms_http_requests_total" in metrics.text
    assert "python_info" not in metrics.text
