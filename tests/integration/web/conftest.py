"""The web app on each database, driven in-process over https://testserver."""

from __future__ import annotations

import re
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel

from replygate.bootstrap import Container
from replygate.errors import NotFound, StorageFailure
from replygate.services import accounts
from replygate.services.account_ports import Role, Scope, User
from replygate.web.app import create_app
from replygate.web.auth import Principal, require_role, require_scope
from replygate.web.csrf import csrf_exempt
from tests.support.webapp import BASE_URL as BASE_URL
from tests.support.webapp import TestClient as TestClient

PASSWORD = "correct horse battery staple"


class Echo(BaseModel):
    text: str


def probe_router() -> APIRouter:
    """Routes that exist only in tests, to exercise the foundation's dependencies."""
    router = APIRouter()

    @router.get("/admin-only")
    def admin_only(who: Annotated[Principal, Depends(require_role(Role.ADMIN))]) -> str:
        return f"hello {who.name}"

    @router.post("/api/v1/echo")
    def echo(
        body: Echo, who: Annotated[Principal, Depends(require_scope(Scope.APPROVALS_WRITE))]
    ) -> dict[str, str]:
        return {"text": body.text, "by": who.name}

    @router.get("/api/v1/read")
    def read(who: Annotated[Principal, Depends(require_scope(Scope.APPROVALS_READ))]) -> str:
        return who.name

    @router.get("/api/v1/missing")
    def missing() -> None:
        raise NotFound("there is no approval request RG-x", fix="check the id")

    @router.get("/api/v1/broken")
    def broken() -> None:
        raise StorageFailure("connection to db.internal:5432 failed: password=hunter2")

    @router.get("/broken-page")
    def broken_page() -> None:
        raise RuntimeError("unexpected")

    @router.post("/hook")
    @csrf_exempt
    def hook() -> str:
        return "accepted"

    return router


@pytest.fixture
def app(container: Container) -> FastAPI:
    app = create_app(container, workers=False)
    app.include_router(probe_router())
    return app


def add_user(container: Container, username: str, role: Role = Role.ADMIN) -> User:
    return accounts.create_user(
        container.uow(), username=username, password=PASSWORD, role=role, actor="test"
    )


def csrf_from(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(
    client: TestClient, username: str, password: str = PASSWORD, next_url: str = "/"
) -> httpx.Response:
    token = csrf_from(client.get("/login"))
    form = {"username": username, "password": password, "csrf_token": token, "next": next_url}
    answer: httpx.Response = client.post("/login", data=form, follow_redirects=False)
    return answer
