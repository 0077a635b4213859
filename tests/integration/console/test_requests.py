"""The request page: details, approvers, timeline; cancel; approve and reject on the web."""

from __future__ import annotations

from replygate.bootstrap import Container
from replygate.domain.model import Channel, Policy, RequestState, Verdict
from replygate.services import requesting
from replygate.services.account_ports import Role
from tests.integration.console.conftest import TestClient, new_request, post_form, signed_in


def test_the_request_page_shows_details_approvers_and_timeline(
    client: TestClient, container: Container
) -> None:
    created = new_request(container)
    signed_in(client, container, "viewer", Role.VIEWER)
    page = client.get(f"/requests/{created.request.id}").text
    assert "<h1>Deploy payments-api 2.3.1</h1>" in page
    assert f"RG-test-{created.request.id}" in page
    assert "<strong>faster</strong> refunds" in page  # Markdown, HTML disabled
    assert '<a href="https://ci.example.test/run/42" rel="noreferrer">' in page
    assert "alice@contoso.test" in page
    assert "bob@contoso.test" in page
    assert "request.create" in page
    assert "mail queued" in page
    # a viewer neither cancels nor decides
    assert "Cancel request" not in page
    assert "Your decision" not in page
    # and the list and dashboard show it as pending
    assert created.request.id in client.get("/requests?state=pending").text
    assert created.request.id in client.get("/").text
    assert created.request.id not in client.get("/requests?state=approved").text


def test_the_reply_token_is_accepted_as_the_id(client: TestClient, container: Container) -> None:
    created = new_request(container)
    signed_in(client, container, "viewer", Role.VIEWER)
    assert client.get(f"/requests/RG-test-{created.request.id}").status_code == 200
    assert client.get("/requests/NOSUCHREQUEST").status_code == 404


def test_an_approver_decides_on_the_web_with_evidence(
    client: TestClient, container: Container
) -> None:
    created = new_request(container)
    signed_in(client, container, "alice", Role.VIEWER, email="Alice@Contoso.test")
    page = f"/requests/{created.request.id}"
    assert "Your decision" in client.get(page).text
    assert client.get(f"{page}/decide").status_code == 405  # never on GET
    answer = post_form(client, page, f"{page}/decide", {"verdict": "approve", "comment": "ok!"})
    assert answer.status_code == 303
    shown = client.get(page).text
    assert "You approved this request. The request is now approved." in shown
    assert "Your decision" not in shown
    with container.uow() as uow:
        request = uow.requests.get(created.request.id)
        assert request is not None
        assert request.state is RequestState.APPROVED
        decision = request.decisions[0]
        audit = [(e.actor, e.action) for e in uow.audit.recent()]
    assert decision.approver == "alice@contoso.test"
    assert decision.verdict is Verdict.APPROVE
    assert decision.channel is Channel.WEB
    assert decision.comment == "ok!"
    assert decision.evidence == {"user": "alice", "ip": "testclient"}
    assert ("alice", "request.decide") in audit
    # A second decision is refused by the domain rules.
    again = post_form(client, "/", f"{page}/decide", {"verdict": "reject"})
    assert again.status_code == 409
    assert "already approved" in again.text


def test_someone_who_is_not_an_approver_cannot_decide(
    client: TestClient, container: Container
) -> None:
    created = new_request(container)
    signed_in(client, container, "mallory", Role.ADMIN, email="mallory@contoso.test")
    page = f"/requests/{created.request.id}"
    assert "Your decision" not in client.get(page).text
    answer = post_form(client, page, f"{page}/decide", {"verdict": "approve"})
    assert answer.status_code == 403
    assert "is not an approver of this request" in answer.text


def test_the_requester_cannot_approve_their_own_request(
    client: TestClient, container: Container
) -> None:
    created = new_request(container, approvers=("ci@contoso.test", "bob@contoso.test"))
    signed_in(client, container, "ci", Role.REQUESTER, email="ci@contoso.test")
    page = f"/requests/{created.request.id}"
    shown = client.get(page).text
    assert "you can only reject it" in shown
    assert 'value="approve"' not in shown
    refused = post_form(client, page, f"{page}/decide", {"verdict": "approve"})
    assert refused.status_code == 409
    rejected = post_form(client, page, f"{page}/decide", {"verdict": "reject"})
    assert rejected.status_code == 303


def test_a_reject_under_policy_all_closes_and_queues_the_outcome_mail(
    client: TestClient, container: Container
) -> None:
    created = new_request(container, policy=Policy.parse("all"))
    signed_in(client, container, "bob", Role.VIEWER, email="bob@contoso.test")
    page = f"/requests/{created.request.id}"
    post_form(client, page, f"{page}/decide", {"verdict": "reject", "comment": "not today"})
    with container.uow() as uow:
        request = uow.requests.get(created.request.id)
        kinds = [row.kind for row in uow.outbox.list()]
    assert request is not None
    assert request.state is RequestState.REJECTED
    assert "outcome_mail" in kinds


def test_requesters_cancel_their_own_requests_and_admins_any(
    client: TestClient, container: Container
) -> None:
    mine = new_request(container, created_by="req")
    theirs = new_request(container, created_by="someone-else")
    signed_in(client, container, "req", Role.REQUESTER)
    assert "Cancel request" in client.get(f"/requests/{mine.request.id}").text
    assert "Cancel request" not in client.get(f"/requests/{theirs.request.id}").text
    refused = post_form(client, "/", f"/requests/{theirs.request.id}/cancel", {})
    assert refused.status_code == 404
    done = post_form(
        client, "/", f"/requests/{mine.request.id}/cancel", {"reason": "wrong version"}
    )
    assert done.status_code == 303
    shown = client.get(f"/requests/{mine.request.id}").text
    assert "The request was cancelled" in shown
    assert "state-cancelled" in shown
    again = post_form(client, "/", f"/requests/{mine.request.id}/cancel", {})
    assert again.status_code == 409


def test_viewers_cannot_cancel(client: TestClient, container: Container) -> None:
    created = new_request(container, created_by="viewer")
    signed_in(client, container, "viewer", Role.VIEWER)
    answer = post_form(client, "/", f"/requests/{created.request.id}/cancel", {})
    assert answer.status_code == 403


def test_the_list_filters_by_state(client: TestClient, container: Container) -> None:
    new_request(container)
    signed_in(client, container, "viewer", Role.VIEWER)
    page = client.get("/requests?state=pending").text
    assert "1 request pending</caption>" in page
    assert '<option value="pending" selected>' in page
    assert "Macro" not in page
    assert "No approval requests in state approved" in client.get("/requests?state=approved").text


def _fail_request_mail(container: Container, request_id: str) -> int:
    with container.uow() as uow:
        (row,) = [r for r in uow.outbox.list() if r.request_id == request_id]
        uow.outbox.mark_failed(row.id, "Send As missing. Fix: grant Send As")
        uow.commit()
        return row.id


def test_admins_send_failed_mail_again(client: TestClient, container: Container) -> None:
    created = new_request(container)
    row_id = _fail_request_mail(container, created.request.id)
    page = f"/requests/{created.request.id}"
    signed_in(client, container, "root", Role.ADMIN)
    shown = client.get(page).text
    assert "1 mail could not be sent: Send As missing. Fix: grant Send As." in shown
    assert "After fixing the cause, send again." in shown
    assert f'action="/requests/{created.request.id}/resend"' in shown
    assert "Send again</button>" in shown
    done = post_form(client, page, f"{page}/resend", {})
    assert done.status_code == 303
    assert done.headers["location"] == page
    shown = client.get(page).text
    assert "1 mail queued to be sent again." in shown
    assert "Send again</button>" not in shown
    with container.uow() as uow:
        row = uow.outbox.get(row_id)
        assert row is not None
        assert (row.state, row.last_error) == ("pending", "")
        audit = [(e.actor, e.action, e.target) for e in uow.audit.recent()]
    assert ("root", "outbox.retry", created.request.id) in audit
    again = post_form(client, page, f"{page}/resend", {})
    assert again.status_code == 409
    assert "no mail that could not be sent" in again.text


def test_send_again_is_for_admins_of_open_requests(
    client: TestClient, container: Container
) -> None:
    created = new_request(container, created_by="req")
    row_id = _fail_request_mail(container, created.request.id)
    page = f"/requests/{created.request.id}"
    signed_in(client, container, "viewer", Role.VIEWER)
    assert "Send again" not in client.get(page).text
    assert post_form(client, page, f"{page}/resend", {}).status_code == 403
    client.cookies.clear()  # signed out
    signed_in(client, container, "req", Role.REQUESTER)
    assert "Send again" not in client.get(page).text
    assert post_form(client, page, f"{page}/resend", {}).status_code == 403
    with container.uow() as uow:
        row = uow.outbox.get(row_id)
        assert row is not None
        assert row.state == "failed"
    # a closed request's mail is not sent again, not even by an admin
    requesting.cancel_request(container.uow(), container.clock, created.request.id, by="req")
    client.cookies.clear()  # signed out
    signed_in(client, container, "root", Role.ADMIN)
    assert "Send again" not in client.get(page).text
    refused = post_form(client, page, f"{page}/resend", {})
    assert refused.status_code == 409
    assert "already cancelled" in refused.text
