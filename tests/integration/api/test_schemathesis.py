"""Property-based run over the OpenAPI document: no 5xx, and every answer (status, media type,
body) is one the document declares. SQLite only, at most 25 examples per operation."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.services.account_ports import Role
from replygate.web.app import create_app
from tests.conftest import FixedClock
from tests.integration.api.conftest import Caller, make_caller, new_request
from tests.integration.web.conftest import BASE_URL, TestClient
from tests.support.fuzzing import API_EXAMPLES, LONG_RUN

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # its optional dependencies' import noise
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def sqlite_container(tmp_path: Path, clock: FixedClock) -> Iterator[Container]:
    settings_ = load_settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'fuzz.db'}", instance="fuzz"
    )
    container = build(settings_, clock=clock)
    migrate.upgrade(container.engine)
    yield container
    container.engine.dispose()


@pytest.fixture
def fuzz_app(sqlite_container: Container) -> FastAPI:
    return create_app(sqlite_container, workers=False)


@pytest.fixture
def fuzz_client(fuzz_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(fuzz_app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def fuzz_admin(sqlite_container: Container, fuzz_client: TestClient) -> Caller:
    admin = make_caller(sqlite_container, "root", Role.ADMIN)
    # One real request, so that some generated ids and filters meet data.
    created = fuzz_client.post("/api/v1/approvals", json=new_request(), headers=admin.headers)
    assert created.status_code == 201
    return admin


def api_document() -> dict[str, Any]:
    """The API part of the OpenAPI document, built from the routers alone (no database
    needed at collection; schemathesis' lazy fixture loader does not run on pytest 9).
    ``test_document_is_the_served_one`` checks it is what the app serves."""
    from replygate.web.api import ROUTERS
    from replygate.web.errors import install_error_handlers

    bare = FastAPI(title="replygate", openapi_url="/api/openapi.json")
    install_error_handlers(bare)
    for router in ROUTERS:
        bare.include_router(router)
    return bare.openapi()


schema = schemathesis.openapi.from_dict(api_document())


def test_document_is_the_served_one(fuzz_client: TestClient) -> None:
    served = fuzz_client.get("/api/openapi.json").json()
    ours = api_document()
    api_paths = {p: v for p, v in served["paths"].items() if p.startswith("/api/v1/")}
    assert api_paths == ours["paths"]
    for name, definition in ours["components"]["schemas"].items():
        assert served["components"]["schemas"][name] == definition


def _httpx_kwargs(case: Any, headers: dict[str, str]) -> dict[str, Any]:
    sent = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    kwargs: dict[str, Any] = {
        "method": sent["method"],
        "url": sent["url"],
        "headers": sent.get("headers"),
        "params": sent.get("params"),
        "cookies": sent.get("cookies"),
    }
    if "json" in sent:
        kwargs["json"] = sent["json"]
    elif sent.get("data") is not None:
        data = sent["data"]
        kwargs["content"] = data.encode() if isinstance(data, str) else data
    return kwargs


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@schema.parametrize()
@settings(
    max_examples=API_EXAMPLES or 25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not LONG_RUN,  # make test: the same cases each run; make fuzz: new ones
)
def test_api_conforms_to_its_openapi_document(
    case: Any, fuzz_client: TestClient, fuzz_admin: Caller
) -> None:
    response = fuzz_client.request(**_httpx_kwargs(case, fuzz_admin.headers))
    case.validate_response(response, checks=CHECKS)
