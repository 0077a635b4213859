"""Graph v1.0 mail: users, sending, drafts, messages, folders, permissions, MIME."""

from __future__ import annotations

import base64
import email
import email.policy

import pytest

from m365emu.testing import RunningEmulator
from tests.emulator.graphkit import (
    ALICE,
    BOB,
    IMMUTABLE,
    SHARED,
    SVC,
    app_token,
    as_user,
    client,
    control,
    deliver,
    error_code,
    mail,
    raw_mail,
)


def test_me_and_users(emu: RunningEmulator) -> None:
    with as_user(emu, SVC) as g:
        me = g.get("/me")
        assert me.status_code == 200
        assert me.json()["userPrincipalName"] == SVC
        assert me.headers["request-id"]
        missing = g.get("/users/nobody@contoso.test")
        assert missing.status_code == 404
        assert error_code(missing) == "Request_ResourceNotFound"
        assert g.get("/users/alice@contoso.test").status_code == 403  # User.Read only
    with client(emu, app_token(emu, frozenset({"User.Read.All"}))) as app:
        assert error_code(app.get("/me")) == "BadRequest"
        assert app.get(f"/users/{ALICE}").json()["mail"] == ALICE


def test_token_errors_use_the_graph_envelope(emu: RunningEmulator) -> None:
    with client(emu, "not-a-jwt") as g:
        resp = g.get("/me/messages", headers={"client-request-id": "abc"})
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert err["code"] == "InvalidAuthenticationToken"
    assert err["innerError"]["client-request-id"] == "abc"
    assert err["innerError"]["request-id"] == resp.headers["request-id"]
    assert "Bearer" in resp.headers["www-authenticate"]


def test_send_mail_delivers_with_mime_headers(emu: RunningEmulator) -> None:
    headers = [{"name": "X-RG-Token", "value": "RG-test-7KQ2M9XW4D"}]
    message = mail(ALICE, "Approve release", internetMessageHeaders=headers)
    message["ccRecipients"] = [{"emailAddress": {"address": "outside@fabrikam.test"}}]
    message["replyTo"] = [{"emailAddress": {"address": SHARED}}]
    with as_user(emu, SVC) as g:
        resp = g.post("/me/sendMail", json={"message": message})
    assert resp.status_code == 202
    assert resp.content == b""
    with as_user(emu, ALICE) as a:
        listed = a.get("/me/mailFolders/inbox/messages", params={"$select": "subject,replyTo"})
        item = listed.json()["value"][0]
        assert item["subject"] == "Approve release"
        assert "internetMessageHeaders" not in item
        assert item["replyTo"][0]["emailAddress"]["address"] == SHARED
        raw = a.get(f"/me/messages/{item['id']}/$value")
    assert raw.headers["content-type"].startswith("text/plain")
    parsed = email.message_from_bytes(raw.content, policy=email.policy.default)
    for name in ("Message-ID", "Date", "Thread-Index", "Thread-Topic", "Received", "Reply-To"):
        assert parsed[name], name
    assert parsed["X-RG-Token"] == "RG-test-7KQ2M9XW4D"
    assert "Sender" not in parsed
    with as_user(emu, SVC) as g:
        sent = g.get("/me/mailFolders/sentitems/messages").json()["value"]
    assert [m["subject"] for m in sent] == ["Approve release"]
    with control(emu) as ctl:
        outbound = ctl.get("/outbound").json()["value"]
    assert outbound[0]["recipients"] == ["outside@fabrikam.test"]


def test_send_mail_without_sent_copy_and_validation(emu: RunningEmulator) -> None:
    with as_user(emu, SVC) as g:
        body = {"message": mail(ALICE), "saveToSentItems": False}
        assert g.post("/me/sendMail", json=body).status_code == 202
        assert g.get("/me/mailFolders/sentitems/messages").json()["value"] == []
        no_rcpt = g.post("/me/sendMail", json={"message": {"subject": "x"}})
        assert error_code(no_rcpt) == "ErrorInvalidRecipients"
        six = [{"name": f"x-h{i}", "value": "v"} for i in range(6)]
        too_many = g.post("/me/sendMail", json={"message": mail(ALICE, internetMessageHeaders=six)})
        assert error_code(too_many) == "InvalidInternetMessageHeaderCollection"
        empty = g.post("/me/sendMail", json={"message": mail(ALICE, internetMessageHeaders=[])})
        assert error_code(empty) == "InvalidInternetMessageHeaderCollection"
        bad = [{"name": "Subject2", "value": "v"}]
        assert (
            g.post(
                "/me/sendMail", json={"message": mail(ALICE, internetMessageHeaders=bad)}
            ).status_code
            == 400
        )


def test_draft_then_send_keeps_immutable_id(emu: RunningEmulator) -> None:
    with as_user(emu, SVC) as g:
        draft = g.post(
            f"/users/{SHARED}/messages",
            json=mail(ALICE, "Draft one", **{"from": {"emailAddress": {"address": SHARED}}}),
            headers=IMMUTABLE,
        )
        assert draft.status_code == 201
        assert draft.headers["preference-applied"] == 'IdType="ImmutableId"'
        d = draft.json()
        assert d["isDraft"] is True
        assert d["internetMessageId"].endswith(".prod.outlook.com>")
        edited = g.patch(
            f"/users/{SHARED}/messages/{d['id']}",
            json={"body": {"contentType": "HTML", "content": "<p>Edited  text</p>"}},
            headers=IMMUTABLE,
        ).json()
        assert edited["bodyPreview"] == "Edited text"
        assert edited["id"] == d["id"]
        sent = g.post(f"/users/{SHARED}/messages/{d['id']}/send", headers=IMMUTABLE)
        assert sent.status_code == 202
        again = g.get(f"/users/{SHARED}/messages/{d['id']}", headers=IMMUTABLE).json()
        assert again["isDraft"] is False
        sentitems = g.get(f"/users/{SHARED}/mailFolders/sentitems").json()
        assert again["parentFolderId"] == sentitems["id"]
        resend = g.post(f"/users/{SHARED}/messages/{d['id']}/send")
        assert resend.status_code == 400
        gone = g.post(f"/users/{SHARED}/messages/AAMkAGI2nothere=/send")
        assert error_code(gone) == "ErrorItemNotFound"
    with as_user(emu, ALICE) as a:
        got = a.get("/me/messages", params={"$select": "internetMessageId,from,sender"}).json()
    assert got["value"][0]["internetMessageId"] == d["internetMessageId"]
    assert got["value"][0]["from"]["emailAddress"]["address"] == SHARED
    assert got["value"][0]["sender"]["emailAddress"]["address"] == SHARED  # Send As: no trace


def test_send_on_behalf_sets_sender(emu: RunningEmulator) -> None:
    from m365emu.tenant import MailboxGrant

    emu.state.tenant.grants.append(MailboxGrant(SHARED, BOB, frozenset({"SendOnBehalf"})))
    with as_user(emu, BOB) as b:
        body = {"message": mail(ALICE, "OBO", **{"from": {"emailAddress": {"address": SHARED}}})}
        assert b.post("/me/sendMail", json=body).status_code == 202
    with as_user(emu, ALICE) as a:
        item = a.get("/me/messages", params={"$select": "from,sender"}).json()["value"][0]
    assert item["from"]["emailAddress"]["address"] == SHARED
    assert item["sender"]["emailAddress"]["address"] == BOB


def test_send_as_and_full_access_denied(emu: RunningEmulator) -> None:
    with as_user(emu, ALICE) as a:
        body = {"message": mail(BOB, **{"from": {"emailAddress": {"address": SHARED}}})}
        denied = a.post("/me/sendMail", json=body)
        assert denied.status_code == 403
        assert error_code(denied) == "ErrorSendAsDenied"
        read = a.get(f"/users/{SHARED}/mailFolders/inbox/messages")
        assert read.status_code == 403
        assert error_code(read) == "ErrorAccessDenied"
    no_shared_scope = frozenset({"Mail.ReadWrite", "Mail.Send"})
    with as_user(emu, SVC, no_shared_scope) as g:
        assert error_code(g.get(f"/users/{SHARED}/messages")) == "ErrorAccessDenied"
    with as_user(emu, SVC, frozenset({"User.Read"})) as g:
        assert error_code(g.get("/me/messages")) == "ErrorAccessDenied"


def test_app_only_scope_restriction_and_missing_mailbox(emu: RunningEmulator) -> None:
    emu.app.application_mailbox_scope = [SHARED]
    with client(emu, app_token(emu)) as app:
        assert app.get(f"/users/{SHARED}/messages").status_code == 200
        blocked = app.get(f"/users/{ALICE}/messages")
        assert blocked.status_code == 403
        assert error_code(blocked) == "ErrorAccessDenied"
        assert (
            "ApplicationAccessPolicy" in blocked.json()["error"]["message"]
            or "AppOnly" in (blocked.json()["error"]["message"])
        )
        assert error_code(app.get("/users/ghost@contoso.test/messages")) == "ErrorInvalidUser"
    user = emu.state.tenant.user_by(BOB)
    assert user is not None
    user.mail = ""
    emu.state.mail = None
    with client(emu, app_token(emu)) as app:
        emu.app.application_mailbox_scope = None
        assert error_code(app.get(f"/users/{BOB}/messages")) == "MailboxNotEnabledForRESTAPI"
    with client(emu, app_token(emu, frozenset())) as app:
        assert error_code(app.get(f"/users/{ALICE}/messages")) == "ErrorAccessDenied"


def test_listing_select_top_filter_orderby_paging(emu: RunningEmulator) -> None:
    for i in range(5):
        deliver(emu, ALICE, raw_mail(ALICE, f"Msg {i}"))
        emu.state.advance_clock(60)
    with as_user(emu, ALICE) as a:
        page = a.get("/me/mailFolders/inbox/messages", params={"$top": 2, "$select": "subject"})
        body = page.json()
        assert [m["subject"] for m in body["value"]] == ["Msg 4", "Msg 3"]
        assert set(body["value"][0]) == {"@odata.etag", "id", "subject"}
        nxt = a.get(body["@odata.nextLink"]).json()
        assert [m["subject"] for m in nxt["value"]] == ["Msg 2", "Msg 1"]
        last = a.get(nxt["@odata.nextLink"]).json()
        assert "@odata.nextLink" not in last
        newest = a.get("/me/messages", params={"$top": 1}).json()["value"][0]
        cut = newest["receivedDateTime"]
        flt = {"$filter": f"receivedDateTime ge {cut}", "$orderby": "receivedDateTime asc"}
        assert len(a.get("/me/messages", params=flt).json()["value"]) == 1
        bad_order = {"$filter": "isRead eq false", "$orderby": "receivedDateTime desc"}
        assert error_code(a.get("/me/messages", params=bad_order)) == "InefficientFilter"
        unread = a.get("/me/messages", params={"$filter": "isRead eq false"}).json()
        assert len(unread["value"]) == 5
        assert a.get("/me/messages", params={"$top": 1001}).status_code == 400
        unknown = a.get("/me/messages", params={"$select": "subject,nonsense"})
        assert error_code(unknown) == "RequestBroker--ParseUri"
        default = a.get("/me/messages").json()["value"][0]
        assert "body" in default
        assert "internetMessageHeaders" not in default
        assert "uniqueBody" not in default


def test_patch_move_delete_permanent_delete(emu: RunningEmulator) -> None:
    ids = [deliver(emu, ALICE, raw_mail(ALICE, f"M{i}"))["id"] for i in range(3)]
    with as_user(emu, ALICE) as a:
        patched = a.patch(f"/me/messages/{ids[0]}", json={"isRead": True})
        assert patched.status_code == 200
        assert patched.json()["isRead"] is True
        assert a.patch(f"/me/messages/{ids[0]}", json={"subject": "x"}).status_code == 400
        moved = a.post(f"/me/messages/{ids[0]}/move", json={"destinationId": "deleteditems"})
        assert moved.status_code == 201
        assert moved.json()["id"] != ids[0]
        assert error_code(a.get(f"/me/messages/{ids[0]}")) == "ErrorItemNotFound"
        imm = a.post(
            f"/me/messages/{ids[1]}/move", json={"destinationId": "archive"}, headers=IMMUTABLE
        ).json()["id"]
        again = a.post(
            f"/me/messages/{imm}/move", json={"destinationId": "inbox"}, headers=IMMUTABLE
        )
        assert again.json()["id"] == imm
        assert a.delete(f"/me/messages/{imm}").status_code == 204
        assert a.get("/me/mailFolders/inbox/messages").json()["value"][0]["subject"] == "M2"
        assert a.post(f"/me/messages/{ids[2]}/permanentDelete").status_code == 204
        assert a.get(f"/me/messages/{ids[2]}").status_code == 404
        bad = a.post(f"/me/messages/{moved.json()['id']}/move", json={"destinationId": "nope"})
        assert bad.status_code == 404


def test_folders_well_known_children_and_filter(emu: RunningEmulator) -> None:
    with as_user(emu, SVC) as g:
        top = g.get("/me/mailFolders", params={"$top": 50}).json()["value"]
        names = {f["displayName"] for f in top}
        assert {"Inbox", "Sent Items", "Deleted Items", "Drafts", "Junk Email"} <= names
        assert g.get("/me/mailFolders", params={"$top": 2}).json()["@odata.nextLink"]
        inbox = g.get("/me/mailFolders('Inbox')").json()
        child = g.post("/me/mailFolders/inbox/childFolders", json={"displayName": "Approvals"})
        assert child.status_code == 201
        assert child.json()["parentFolderId"] == inbox["id"]
        dup = g.post("/me/mailFolders/inbox/childFolders", json={"displayName": "approvals"})
        assert dup.status_code == 409
        flt = {"$filter": "displayName eq 'Approvals'"}
        found = g.get("/me/mailFolders/inbox/childFolders", params=flt).json()["value"]
        assert [f["id"] for f in found] == [child.json()["id"]]
        assert (
            g.get("/me/mailFolders", params={"$filter": "displayName eq 'Inbox'"}).json()["value"][
                0
            ]["id"]
            == inbox["id"]
        )
        nested = g.get(f"/me/mailFolders/inbox/childFolders/{child.json()['id']}/messages")
        assert nested.status_code == 200
        assert error_code(g.get("/me/mailFolders/doesnotexist")) == "ErrorItemNotFound"


def test_deliver_raw_parses_charset_and_prefers_html(emu: RunningEmulator) -> None:
    raw = (
        b"From: =?iso-8859-1?q?Ren=E9?= <rene@fabrikam.test>\r\nTo: alice@contoso.test\r\n"
        b"Subject: =?utf-8?b?UsOpc3Vtw6k=?=\r\nMessage-ID: <m1@fabrikam.test>\r\n"
        b"Auto-Submitted: no\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nOui, approuv\xe9\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Oui, approuv\xc3\xa9</p>\r\n"
        b"--b--\r\n"
    )
    ids = deliver(emu, ALICE, raw)
    with as_user(emu, ALICE) as a:
        sel = "subject,from,body,bodyPreview,internetMessageHeaders,internetMessageId"
        msg = a.get(f"/me/messages/{ids['id']}", params={"$select": sel}).json()
        assert msg["subject"] == "Résumé"
        assert msg["from"]["emailAddress"] == {"name": "René", "address": "rene@fabrikam.test"}
        assert msg["body"]["contentType"] == "html"
        assert "approuvé" in msg["body"]["content"]
        assert msg["bodyPreview"] == "Oui, approuvé"
        assert {"name": "Auto-Submitted", "value": "no"} in msg["internetMessageHeaders"]
        assert msg["internetMessageId"] == "<m1@fabrikam.test>"
        assert a.get(f"/me/messages/{ids['id']}/$value").content == raw
        text = a.get(
            f"/me/messages/{ids['id']}", headers={"Prefer": 'outlook.body-content-type="text"'}
        )
        assert text.json()["body"]["contentType"] == "text"


def test_inbox_rule_moves_mail(emu: RunningEmulator) -> None:
    with as_user(emu, ALICE) as a:
        folder = a.post("/me/mailFolders/inbox/childFolders", json={"displayName": "Approvals"})
        rule = {
            "displayName": "Approvals",
            "sequence": 1,
            "isEnabled": True,
            "conditions": {"subjectContains": ["RG-"], "senderContains": ["fabrikam"]},
            "actions": {"moveToFolder": folder.json()["id"], "stopProcessingRules": True},
        }
        created = a.post("/me/mailFolders/inbox/messageRules", json=rule)
        assert created.status_code == 201
        deliver(emu, ALICE, raw_mail(ALICE, "RE: RG-prod-1"))
        deliver(emu, ALICE, raw_mail(ALICE, "Lunch"))
        moved = a.get(f"/me/mailFolders/{folder.json()['id']}/messages").json()["value"]
        assert [m["subject"] for m in moved] == ["RE: RG-prod-1"]
        inbox = a.get("/me/mailFolders/inbox/messages").json()["value"]
        assert [m["subject"] for m in inbox] == ["Lunch"]
        rid = created.json()["id"]
        assert a.get("/me/mailFolders/inbox/messageRules").json()["value"][0]["id"] == rid
        assert (
            a.patch(
                f"/me/mailFolders/inbox/messageRules/{rid}", json={"isEnabled": False}
            ).status_code
            == 200
        )
        assert a.delete(f"/me/mailFolders/inbox/messageRules/{rid}").status_code == 204
    with as_user(emu, ALICE, frozenset({"Mail.ReadWrite"})) as a:
        assert a.get("/me/mailFolders/inbox/messageRules").status_code == 403


@pytest.mark.parametrize("path", ["/me/nothing", "/v2/x", "/me/messages/x/unknownAction"])
def test_unknown_segments_are_400(emu: RunningEmulator, path: str) -> None:
    with as_user(emu, ALICE) as a:
        resp = a.get(path)
    assert resp.status_code == 400
    assert error_code(resp) == "BadRequest"


def test_send_mail_and_draft_as_mime(emu: RunningEmulator) -> None:
    raw = raw_mail(ALICE, "MIME send", sender=SVC, msgid="<mime-1@contoso.test>")
    mime = {"Content-Type": "text/plain"}
    with as_user(emu, SVC) as g:
        sent = g.post("/me/sendMail", content=base64.b64encode(raw), headers=mime)
        assert sent.status_code == 202
        bad = g.post("/me/sendMail", content=b"not base64!", headers=mime)
        assert error_code(bad) == "ErrorMimeContentInvalidBase64String"
        draft = g.post("/me/messages", content=base64.b64encode(raw), headers=mime)
        assert draft.status_code == 201
        assert draft.json()["isDraft"] is True
    with as_user(emu, ALICE) as a:
        got = a.get("/me/messages", params={"$select": "internetMessageId"}).json()["value"]
    assert got[0]["internetMessageId"] == "<mime-1@contoso.test>"


def test_wrong_method_is_405(emu: RunningEmulator) -> None:
    with as_user(emu, ALICE) as a:
        resp = a.put("/me/sendMail", json={})
    assert resp.status_code == 405
    assert error_code(resp) == "Request_BadRequest"
