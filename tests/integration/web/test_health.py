"""``GET /healthz``: ok, degraded or failing, with one entry per check."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI

from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.db.engine import make_engine
from replygate.web.app import create_app
from replygate.web.health import CheckResult
from tests.integration.web.conftest import BASE_URL, TestClient


def test_ok_on_a_current_database(client: TestClient, container: Container) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    # Nothing configured yet: the database is fine, the credentials check warns (200).
    assert body["status"] == "degraded"
    assert body["database"]["status"] == "ok"
    assert body["database"]["data"]["backend"] == container.engine.dialect.name
    assert body["database"]["data"]["revision"] == migrate.head_revision(container.engine)
    assert [check["name"] for check in body["checks"]] == ["database", "credentials", "mail"]
    assert body["checks"][1]["detail"] == "Email Settings are not saved yet: no mail can be sent"


def test_failing_when_the_database_is_unreachable(container: Container) -> None:
    unreachable = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(replace(container, engine=unreachable))
    with TestClient(app, base_url=BASE_URL) as client:
        answer = client.get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "failing"
    assert body["database"]["status"] == "failing"
    assert body["database"]["detail"] == "the database cannot be reached (OperationalError)"
    assert "127.0.0.1" not in answer.text
    assert "nobody" not in answer.text


def test_failing_when_the_schema_is_not_upgraded(tmp_path: Path) -> None:
    container = build(load_settings(data_dir=tmp_path))
    with TestClient(create_app(container), base_url=BASE_URL) as client:
        answer = client.get("/healthz")
    assert answer.status_code == 503
    assert "run `replygate db upgrade`" in answer.json()["database"]["detail"]


def test_registered_checks_are_reported(app: FastAPI) -> None:
    def expiry(_: Container) -> CheckResult:
        return CheckResult("credentials", "warning", "secret expires in 6 days", {"days": 6})

    app.state.health.register("credentials", expiry)
    with TestClient(app, base_url=BASE_URL) as client:
        answer = client.get("/healthz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "degraded"
    assert body["checks"][1] == {
        "name": "credentials",
        "status": "warning",
        "detail": "secret expires in 6 days",
        "data": {"days": 6},
    }


def test_a_failing_or_broken_check_fails_health_but_others_still_answer(app: FastAPI) -> None:
    def mail_flow(_: Container) -> CheckResult:
        return CheckResult("mail", "failing", "re-authorisation needed")

    def broken(_: Container) -> CheckResult:
        raise ValueError("bug")

    app.state.health.register("mail", mail_flow)
    app.state.health.register("broken", broken)
    with TestClient(app, base_url=BASE_URL) as client:
        answer = client.get("/healthz")
    assert answer.status_code == 503
    statuses = {check["name"]: check["status"] for check in answer.json()["checks"]}
    assert statuses == {
        "database": "ok",
        "credentials": "warning",
        "mail": "failing",  # the test's own check replaced the built-in one of that name
        "broken": "failing",
    }
