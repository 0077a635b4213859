"""The control API (/_emu) and the mailbox web view (/_emu/ui), plus a real MSAL token."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from m365emu.testing import RunningEmulator, run_msal_browser_login
from tests.emulator.graphkit import (
    ALICE,
    SHARED,
    SVC,
    as_user,
    client,
    control,
    deliver,
    mail,
    raw_mail,
)


def test_mailboxes_folders_and_messages(emu: RunningEmulator) -> None:
    with control(emu) as ctl:
        boxes = {b["address"]: b for b in ctl.get("/mailboxes").json()["value"]}
        assert boxes[SHARED]["kind"] == "shared"
        made = ctl.post(f"/mailboxes/{SHARED}/folders", json={"path": "Inbox/Approvals"})
        assert made.json()["path"] == "Inbox/Approvals"
        ids = deliver(emu, SHARED, raw_mail(SHARED, "Into subfolder"), folder="Inbox/Approvals")
        assert ids["folder"] == "Inbox/Approvals"
        listed = ctl.get(f"/mailboxes/{SHARED}/folders/Inbox/Approvals/messages").json()
        assert [m["subject"] for m in listed["value"]] == ["Into subfolder"]
        one = ctl.get(f"/mailboxes/{SHARED}/messages/{ids['id']}").json()
        assert one["raw"].startswith("From: Ext <ext@fabrikam.test>")
        assert one["message"]["internetMessageHeaders"]
        assert ctl.get("/mailboxes/nobody@x.test/folders/inbox/messages").status_code == 404


def test_counters_throttling_faults_reset(emu: RunningEmulator) -> None:
    with control(emu) as ctl, as_user(emu, ALICE) as a:
        a.get("/me/messages")
        rows = ctl.get("/counters").json()["value"]
        assert rows == [
            {
                "client_id": emu.client_id,
                "mailbox": ALICE,
                "endpoint": "GET /v1.0/me/messages",
                "requests": 1,
                "throttled": 0,
                "batched": 0,
            }
        ]
        assert ctl.delete("/counters").json()["value"] == []
        limits = ctl.put("/throttling", json={"max_concurrent": 2}).json()
        assert limits == {"requests_per_window": 10000, "window_seconds": 600, "max_concurrent": 2}
        fault = {
            "endpoint": "GET /v1.0/me/*",
            "status": 500,
            "code": "generalException",
            "count": 2,
        }
        assert len(ctl.post("/faults", json=fault).json()["value"]) == 1
        assert ctl.delete("/faults").json()["value"] == []
        throttled = {"endpoint": "GET /v1.0/me/messages", "status": 429,
                     "code": "TooManyRequests", "retry_after": 3}  # fmt: skip
        assert ctl.post("/faults", json=throttled).json()["value"][0]["retry_after"] == 3
        answer = a.get("/me/messages")
        assert (answer.status_code, answer.headers["retry-after"]) == (429, "3")
        assert a.get("/me/messages").status_code == 200  # count 1: only the first
        deliver(emu, ALICE, raw_mail(ALICE, "before reset"))
        assert ctl.post("/reset", json={}).status_code == 200
        assert a.get("/me/messages").json()["value"] == []
        assert ctl.get("/throttling").json()["max_concurrent"] == 4


def test_identity_hooks(emu: RunningEmulator) -> None:
    with control(emu) as ctl:
        assert ctl.post(f"/users/{ALICE}/revoke").json() == {"revoked": 0}
        assert ctl.post("/users/nobody@contoso.test/revoke").status_code == 400
        expired = ctl.post(f"/apps/{emu.client_id}/secrets/expire", json={})
        assert expired.status_code == 200
        assert emu.app.secrets[0].expires_at <= emu.state.now()
        ctl.put(f"/apps/{emu.client_id}/consent", json={"delegated": False})
        assert emu.app.delegated_consent is False


def test_real_msal_client_credentials_token_reaches_graph(emu: RunningEmulator) -> None:
    result = emu.msal_app().acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    with client(emu, result["access_token"]) as app:
        assert app.get(f"/users/{SHARED}/mailFolders/inbox/messages").status_code == 200


def test_real_msal_auth_code_flow_token_reaches_shared_mailbox(emu: RunningEmulator) -> None:
    app = emu.msal_app()
    flow = app.initiate_auth_code_flow(
        ["Mail.ReadWrite.Shared", "Mail.Send.Shared"],
        redirect_uri="https://127.0.0.1:8443/oauth/callback",
        prompt="select_account",
        response_mode="form_post",
    )
    answer = run_msal_browser_login(flow["auth_uri"], emu.ca_file, account=SVC)
    result = app.acquire_token_by_auth_code_flow(flow, answer)
    assert "access_token" in result, result
    with client(emu, result["access_token"]) as g:
        assert g.get(f"/users/{SHARED}/mailFolders/inbox/messages").status_code == 200
        body = {"message": mail(ALICE, **{"from": {"emailAddress": {"address": SHARED}}})}
        assert g.post("/me/sendMail", json=body).status_code == 202


def test_web_view_reply_as_user(emu: RunningEmulator) -> None:
    request = mail(
        ALICE, "Approve RG-prod-7KQ2M9XW4D", replyTo=[{"emailAddress": {"address": SHARED}}]
    )
    request["from"] = {"emailAddress": {"address": SHARED}}
    with as_user(emu, SVC) as g:
        assert g.post("/me/sendMail", json={"message": request}).status_code == 202
    with control(emu) as ctl:
        assert "alice@contoso.test" in ctl.get("/ui/").text
        inbox = ctl.get(f"/mailboxes/{ALICE}/folders/inbox/messages").json()["value"]
        original = inbox[0]
        assert "Approve RG-prod-7KQ2M9XW4D" in ctl.get(f"/ui/{ALICE}/inbox").text
        page = ctl.get(f"/ui/{ALICE}/messages/{original['immutableId']}")
        assert "Reply as alice@contoso.test" in page.text
        sent = ctl.post(
            f"/ui/{ALICE}/messages/{original['immutableId']}/reply",
            data={"text": "Approved, ship it"},
        )
        assert sent.status_code == 303
        replies = ctl.get(f"/mailboxes/{SHARED}/folders/inbox/messages").json()["value"]
        assert [r["subject"] for r in replies] == ["RE: Approve RG-prod-7KQ2M9XW4D"]
        raw = ctl.get(f"/mailboxes/{SHARED}/messages/{replies[0]['id']}").json()["raw"]
    parsed = email.message_from_string(raw, policy=email.policy.default)
    assert parsed["In-Reply-To"].strip() == original["internetMessageId"]  # folded as Exchange does
    assert original["internetMessageId"] in parsed["References"]
    text = parsed.get_body(preferencelist=("plain",))
    assert text is not None
    content = text.get_content()
    assert content.startswith("Approved, ship it")
    assert "From: Approvals <approvals@contoso.test>" in content


def test_save_and_load_mail(emu: RunningEmulator, tmp_path: Path) -> None:
    ids = deliver(emu, ALICE, raw_mail(ALICE, "Kept across restarts"))
    target = tmp_path / "mail.json"
    with control(emu) as ctl:
        assert ctl.post("/mail/save", json={"path": str(target)}).status_code == 200
        ctl.post("/reset", json={})
        assert ctl.get(f"/mailboxes/{ALICE}/folders/inbox/messages").json()["value"] == []
        assert ctl.post("/mail/load", json={"path": str(target)}).status_code == 200
        back = ctl.get(f"/mailboxes/{ALICE}/messages/{ids['immutableId']}").json()
    assert back["message"]["subject"] == "Kept across restarts"
    assert back["raw"] == raw_mail(ALICE, "Kept across restarts").decode()


def test_deliver_with_exchange_inbound_stamp(emu: RunningEmulator) -> None:
    with control(emu) as ctl:
        resp = ctl.post(
            f"/mailboxes/{ALICE}/deliver",
            params={"stamp": "true", "dmarc": "fail"},
            content=raw_mail(ALICE, "Spoofed", sender="ceo@contoso.test"),
        )
        raw = ctl.get(f"/mailboxes/{ALICE}/messages/{resp.json()['id']}").json()["raw"]
        assert ctl.post(f"/mailboxes/{ALICE}/deliver", params={"dmarc": "x"}).status_code == 400
    parsed = email.message_from_string(raw, policy=email.policy.default)
    assert parsed["Received"].startswith("from mail.contoso.test")
    assert "dmarc=fail" in parsed["Authentication-Results"]
    assert "compauth=fail" in parsed["Authentication-Results"]
    assert parsed["X-MS-Exchange-Organization-AuthAs"] == "Anonymous"
