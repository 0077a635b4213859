"""Console pages driven in-process over https://testserver, on SQLite and PostgreSQL.

The integration tests' web fixtures (container with a fixed clock, app, client) are used;
helpers here add what console tests need: signed-in clients per role, settings, requests.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from replygate.bootstrap import Container
from replygate.domain.model import Policy
from replygate.services import accounts
from replygate.services.account_ports import Role, User
from replygate.services.applications import ApplicationInput, register_application
from replygate.services.configuring import parse_settings, save_settings
from replygate.services.requesting import Created, RequestDraft, create_request
from tests.integration.web.conftest import PASSWORD, TestClient, csrf_from, sign_in

TENANT = "4c2a5e1b-9d3f-4e7a-8b6c-1f0e2d3c4b5a"
CLIENT_ID = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"


def user(container: Container, name: str, role: Role, email: str | None = None) -> User:
    return accounts.create_user(
        container.uow(), username=name, password=PASSWORD, role=role, email=email, actor="test"
    )


def signed_in(client: TestClient, container: Container, name: str, role: Role, **kw: str) -> User:
    made = user(container, name, role, kw.get("email"))
    answer = sign_in(client, name)
    assert answer.status_code == 303, answer.text
    return made


def post_form(
    client: TestClient, page: str, action: str, data: dict[str, object]
) -> httpx.Response:
    """Submit a form the way a browser does: with the CSRF token of the page it is on."""
    token = csrf_from(client.get(page))
    answer: httpx.Response = client.post(
        action, data={**data, "csrf_token": token}, follow_redirects=False
    )
    return answer


def register_app(
    container: Container, name: str = "contoso", expires: datetime | None = None
) -> int:
    data = ApplicationInput(
        name=name,
        tenant=TENANT,
        client_id=CLIENT_ID,
        client_secret="s3cret-value",
        secret_expires_at=expires or container.clock.now() + timedelta(days=365),
    )
    app = register_application(container.uow(), container.clock, container.secrets, data, by="t")
    assert app.id is not None
    return app.id


def save_email_settings(container: Container, app_name: str = "contoso") -> None:
    settings = parse_settings(
        {
            "smtp_user": "svc-replygate@contoso.test",
            "smtp_oauth_application": app_name,
            "smtp_from_address": "approvals@contoso.test",
            "email_reply_folder": "Inbox/Approvals",
        }
    )
    save_settings(container.uow(), container.clock, container.secrets, settings, by="t")


def new_request(
    container: Container,
    *,
    approvers: tuple[str, ...] = ("alice@contoso.test", "bob@contoso.test"),
    created_by: str = "ci",
    policy: Policy | None = None,
) -> Created:
    draft = RequestDraft(
        title="Deploy payments-api 2.3.1",
        approvers=approvers,
        requester="ci@contoso.test",
        details="Release notes: **faster** refunds.",
        metadata={"environment": "production", "pipeline": "https://ci.example.test/run/42"},
        policy=policy or Policy(),
    )
    return create_request(container.uow(), container.clock, "test", draft, created_by=created_by)
