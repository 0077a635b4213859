"""Errors as answers: problem+json under /api/, an HTML page elsewhere, no stack traces."""

from __future__ import annotations

import logging

import pytest

from replygate.bootstrap import Container
from tests.integration.web.conftest import TestClient, add_user, csrf_from, sign_in


def test_user_error_is_a_problem_document(client: TestClient) -> None:
    answer = client.get("/api/v1/missing")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "type": "urn:replygate:problem:not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "there is no approval request RG-x",
        "instance": "/api/v1/missing",
        "fix": "check the id",
    }


def test_unknown_api_path_and_bad_body(client: TestClient) -> None:
    unknown = client.get("/api/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "about:blank"
    issued = client.post("/api/v1/echo", json={"wrong": 1}, headers={"Authorization": "Bearer x"})
    assert issued.status_code == 401  # credentials are checked before the body is trusted


def test_validation_errors_name_the_field(client: TestClient, container: Container) -> None:
    add_user(container, "alice")
    sign_in(client, "alice")
    token = csrf_from(client.get("/"))
    answer = client.post("/api/v1/echo", json={"wrong": 1}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 422
    body = answer.json()
    assert body["type"] == "urn:replygate:problem:invalid-input"
    assert body["errors"] == [{"location": "body.text", "message": "Field required"}]
    assert "body.text: Field required" in body["detail"]


def test_openapi_document_is_served(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    assert "/healthz" in document["paths"]
    assert "/login" not in document["paths"]
    assert document["paths"]["/api/v1/read"]["get"]["security"] == [{"apiToken": []}]
    assert document["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


def test_system_failure_is_logged_not_shown(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="replygate.web.errors"):
        answer = client.get("/api/v1/broken")
    assert answer.status_code == 500
    body = answer.json()
    assert body["type"] == "urn:replygate:problem:internal-failure"
    assert "hunter2" not in answer.text
    assert "db.internal" not in answer.text
    assert "Traceback" not in answer.text
    reference = body["reference"]
    assert reference in body["fix"]
    [record] = [r for r in caplog.records if reference in r.getMessage()]
    assert "GET /api/v1/broken" in record.getMessage()
    assert "StorageFailure" in record.getMessage()
    assert record.exc_info is not None


def test_unexpected_exception_on_a_page_is_an_html_500(client: TestClient) -> None:
    answer = client.get("/broken-page")
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
    assert "internal failure" in answer.text
    assert "Traceback" not in answer.text
    assert "unexpected" not in answer.text


def test_html_404_page(client: TestClient) -> None:
    answer = client.get("/no-such-page")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert '<h1 id="error-heading">Not Found</h1>' in answer.text
