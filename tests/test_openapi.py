"""The committed OpenAPI description is the one the app generates."""

import json
from pathlib import Path

from app.main import openapi_json

COMMITTED = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def test_openapi_file_matches_the_app():
    assert json.loads(COMMITTED.read_text()) == json.loads(openapi_json()), (
        "openapi/openapi.json is stale: run `esms-usage openapi` and commit the result"
    )


def test_contract_paths_are_described():
    paths = json.loads(COMMITTED.read_text())["paths"]
    for path, method in [
        ("/health", "get"),
        ("/api/v1/vendors", "post"),
        ("/api/v1/establishments", "post"),
        ("/api/v1/establishments/{finess}", "get"),
        ("/api/v1/projects", "post"),
        ("/api/v1/projects", "get"),
        ("/api/v1/projects/{project_id}", "get"),
        ("/api/v1/extracts", "post"),
        ("/api/v1/establishments/{finess}/measurements", "get"),
    ]:
        assert method in paths[path], (path, method)
    body = paths["/api/v1/extracts"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv"} <= set(body)
