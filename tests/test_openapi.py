"""The committed OpenAPI description is the one the app generates."""

import json
from pathlib import Path

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

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


def _document() -> dict:
    return json.loads(COMMITTED.read_text())


def _references(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for value in node for r in _references(value)]
    return []


def test_every_reference_resolves_and_the_document_validates():
    document = _document()
    names = set(document["components"]["schemas"])
    prefix = "#/components/schemas/"
    references = set(_references(document))
    assert {"#/components/schemas/ExtractIn", "#/components/schemas/PilotUsageIn"} <= references
    assert {
        r for r in references if not r.startswith(prefix) or r[len(prefix) :] not in names
    } == set()
    validate(document)  # raises with the first fault found


def _request_bodies() -> list[tuple[str, str, dict]]:
    return [
        (f"{method.upper()} {path}", media, content)
        for path, operations in _document()["paths"].items()
        for method, operation in operations.items()
        for media, content in operation.get("requestBody", {}).get("content", {}).items()
    ]


def test_every_request_body_has_an_example_that_matches_its_schema():
    document = _document()
    bodies = _request_bodies()
    assert len(bodies) >= 13
    for operation, media, content in bodies:
        schema = content["schema"]
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        examples = [content["example"]] if "example" in content else schema.get("examples", [])
        assert examples, f"{operation} {media}: no example"
        for example in examples:
            OAS31Validator(
                {
                    "$ref": content["schema"].get("$ref", "#/body"),
                    "components": document["components"],
                    "body": content["schema"],
                }
            ).validate(example)


def test_the_csv_bodies_are_documented_with_the_json_columns():
    document = _document()
    for path, batch, row in [
        ("/api/v1/extracts", "ExtractBatch", "ExtractIn"),
        ("/api/v1/pilots/usage", "PilotUsageBatch", "PilotUsageIn"),
    ]:
        content = document["paths"][path]["post"]["requestBody"]["content"]
        assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{batch}"}
        header = content["text/csv"]["example"].splitlines()[0].split(",")
        assert set(header) == set(document["components"]["schemas"][row]["required"])
