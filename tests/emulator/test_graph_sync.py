"""Graph v1.0 mail: delta query, JSON batching, throttling, change notifications."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx

from m365emu.testing import RunningEmulator
from tests.emulator.graphkit import (
    ALICE,
    SHARED,
    app_token,
    as_user,
    client,
    control,
    deliver,
    error_code,
    raw_mail,
    subscriber,
)

PAGE2 = {"Prefer": "odata.maxpagesize=2"}


def _drain(g: httpx.Client, url: str, headers: dict[str, str]) -> tuple[list[dict], str, int]:
    items: list[dict] = []
    pages = 0
    while True:
        body = g.get(url, headers=headers).json()
        pages += 1
        items += body["value"]
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


def test_delta_pages_changes_removals_and_resync(emu: RunningEmulator) -> None:
    for i in range(5):
        deliver(emu, ALICE, raw_mail(ALICE, f"D{i}"))
    with as_user(emu, ALICE) as a:
        first = a.get(
            "/me/mailFolders/inbox/messages/delta", params={"$select": "subject"}, headers=PAGE2
        )
        assert first.headers["preference-applied"] == "odata.maxpagesize=2"
        items, link, pages = _drain(a, first.json()["@odata.nextLink"], PAGE2)
        items = first.json()["value"] + items
        assert pages == 2
        assert sorted(m["subject"] for m in items) == [f"D{i}" for i in range(5)]
        assert set(items[0]) == {"@odata.type", "@odata.etag", "id", "subject"}
        # Next round: one new message, one moved out, one read (changed).
        deliver(emu, ALICE, raw_mail(ALICE, "D5"))
        by_subject = {m["subject"]: m["id"] for m in items}
        a.post(f"/me/messages/{by_subject['D0']}/move", json={"destinationId": "archive"})
        a.patch(f"/me/messages/{by_subject['D1']}", json={"isRead": True})
        changes, link2, _ = _drain(a, link, PAGE2)
        removed = [c for c in changes if "@removed" in c]
        assert removed == [
            {
                "@odata.type": "#microsoft.graph.message",
                "id": by_subject["D0"],
                "@removed": {"reason": "deleted"},
            }
        ]
        assert sorted(c["subject"] for c in changes if "subject" in c) == ["D1", "D5"]
        nothing, _, _ = _drain(a, link2, {})
        assert nothing == []
        with control(emu) as ctl:
            ctl.post("/delta/invalidate")
        gone = a.get(link2)
        assert gone.status_code == 410
        assert error_code(gone) == "SyncStateNotFound"
        assert a.get(link2.replace("deltatoken=", "deltatoken=xx")).status_code == 410


def test_delta_change_types(emu: RunningEmulator) -> None:
    first = deliver(emu, ALICE, raw_mail(ALICE, "existing"))
    url = "/me/mailFolders/inbox/messages/delta"
    with as_user(emu, ALICE) as a:
        links = {}
        for change in ("created", "updated", "deleted"):
            items, links[change], _ = _drain(a, f"{url}?changeType={change}", {})
            assert len(items) == (1 if change == "created" else 0)
        deliver(emu, ALICE, raw_mail(ALICE, "new"))
        a.patch(f"/me/messages/{first['id']}", json={"isRead": True})
        created, _, _ = _drain(a, links["created"], {})
        updated, _, _ = _drain(a, links["updated"], {})
        assert [m["subject"] for m in created] == ["new"]
        assert [m["subject"] for m in updated] == ["existing"]
        a.post(f"/me/messages/{first['id']}/permanentDelete")
        deleted, _, _ = _drain(a, links["deleted"], {})
        assert [m["@removed"] for m in deleted] == [{"reason": "deleted"}]
        assert a.get(f"{url}?changeType=moved").status_code == 400


def test_delta_filter_and_restrictions(emu: RunningEmulator) -> None:
    with as_user(emu, ALICE) as a:
        bad = a.get("/me/mailFolders/inbox/messages/delta", params={"$filter": "isRead eq true"})
        assert bad.status_code == 400
        future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        deliver(emu, ALICE, raw_mail(ALICE, "old"))
        flt = {"$filter": f"receivedDateTime ge {future}"}
        body = a.get("/me/mailFolders/inbox/messages/delta", params=flt).json()
        assert body["value"] == []
        assert "@odata.deltaLink" in body


def test_batch_dependencies_limits_and_inner_errors(emu: RunningEmulator) -> None:
    deliver(emu, ALICE, raw_mail(ALICE, "B1"))
    with as_user(emu, ALICE) as a:
        mid = a.get("/me/messages").json()["value"][0]["id"]
        steps = [
            {"id": "1", "method": "GET", "url": "/me/messages/AAMkAGI2missing="},
            {"id": "2", "dependsOn": ["1"], "method": "DELETE", "url": f"/me/messages/{mid}"},
            {
                "id": "3",
                "method": "POST",
                "url": f"/me/messages/{mid}/move",
                "headers": {"Content-Type": "application/json"},
                "body": {"destinationId": "deleteditems"},
            },
            {"id": "4", "method": "GET", "url": "me/mailFolders('inbox')"},
            {"id": "5", "method": "GET", "url": f"/me/messages/{mid}/$value", "dependsOn": ["4"]},
        ]
        resp = a.post("/$batch", json={"requests": steps})
        assert resp.status_code == 200
        by_id = {r["id"]: r for r in resp.json()["responses"]}
        assert by_id["1"]["status"] == 404
        assert by_id["1"]["body"]["error"]["code"] == "ErrorItemNotFound"
        assert by_id["2"]["status"] == 424
        assert by_id["3"]["status"] == 201
        assert by_id["4"]["body"]["displayName"] == "Inbox"
        assert by_id["5"]["status"] == 404  # moved by step 3: its old id is gone
        too_many = [{"id": str(i), "method": "GET", "url": "/me"} for i in range(21)]
        assert a.post("/$batch", json={"requests": too_many}).status_code == 400
        dup = [{"id": "1", "method": "GET", "url": "/me"}] * 2
        assert a.post("/$batch", json={"requests": dup}).status_code == 400
        no_ct = [{"id": "1", "method": "POST", "url": "/me/sendMail", "body": {}}]
        assert a.post("/$batch", json={"requests": no_ct}).status_code == 400
        cycle = [
            {"id": "1", "method": "GET", "url": "/me", "dependsOn": ["2"]},
            {"id": "2", "method": "GET", "url": "/me", "dependsOn": ["1"]},
        ]
        assert a.post("/$batch", json={"requests": cycle}).status_code == 400
        encoded = quote(by_id["3"]["body"]["id"], safe="")  # step URLs are percent-decoded
        step = [{"id": "1", "method": "GET", "url": f"/me/messages/{encoded}"}]
        again = a.post("/$batch", json={"requests": step}).json()["responses"][0]
        assert again["status"] == 200
    with control(emu) as ctl:
        rows = ctl.get("/counters").json()["value"]
    endpoints = {r["endpoint"]: r for r in rows}
    assert "POST /v1.0/$batch" in endpoints
    move = endpoints["POST /v1.0/me/messages/{id}/move"]
    assert move["batched"] == move["requests"] > 0  # moves were only ever $batch steps
    assert endpoints["POST /v1.0/$batch"]["batched"] == 0  # the envelope is a round trip


def test_throttling_window_quota(emu: RunningEmulator) -> None:
    with control(emu) as ctl:
        ctl.put("/throttling", json={"requests_per_window": 3, "window_seconds": 60})
        with as_user(emu, ALICE) as a:
            codes = [a.get("/me/mailFolders/inbox").status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429]
            throttled = a.get("/me/messages")
            assert throttled.status_code == 429
            assert error_code(throttled) == "ApplicationThrottled"
            assert 1 <= int(throttled.headers["retry-after"]) <= 60
            with client(emu, app_token(emu)) as app:  # another mailbox: its own budget
                assert app.get(f"/users/{SHARED}/messages").status_code == 200
            ctl.post("/clock/advance", json={"seconds": 61})
            assert a.get("/me/messages").status_code == 200
        totals = ctl.get("/counters").json()["totals"]
        assert totals["throttled"] == 2
        assert totals["requests"] == 7


def test_throttling_concurrency(emu: RunningEmulator) -> None:
    with control(emu) as ctl:
        ctl.post(
            "/faults",
            json={"endpoint": "GET /v1.0/me/mailFolders/*", "status": 0, "latency_ms": 400,
                  "count": 6},
        )  # fmt: skip
    token = as_user(emu, ALICE).headers["Authorization"]

    async def burst() -> list[int]:
        async with httpx.AsyncClient(
            base_url=emu.graph_url, verify=emu.ssl_context(), headers={"Authorization": token}
        ) as c:
            resps = await asyncio.gather(*(c.get("/me/mailFolders/inbox") for _ in range(6)))
        return sorted(r.status_code for r in resps)

    codes = asyncio.run(burst())
    assert codes.count(200) == 4
    assert codes.count(429) == 2


def test_fault_injection(emu: RunningEmulator) -> None:
    with control(emu) as ctl:
        fault = {"endpoint": "POST /v1.0/me/sendMail", "status": 503, "code": "ServiceNotAvailable"}
        assert ctl.post("/faults", json=fault).status_code == 201
    with as_user(emu, ALICE) as a:
        body = {"message": {"subject": "x", "toRecipients": [{"emailAddress": {"address": ALICE}}]}}
        first = a.post("/me/sendMail", json=body)
        assert first.status_code == 503
        assert error_code(first) == "ServiceNotAvailable"
        assert a.post("/me/sendMail", json=body).status_code == 202
    with control(emu) as ctl:
        template = {"endpoint": "GET /v1.0/me/messages/{id}", "status": 504, "code": "Timeout"}
        ctl.post("/faults", json=template)
    with as_user(emu, ALICE) as a:
        assert a.get("/me/messages/anything").status_code == 504


def _subscription(url: str, minutes: int = 60, **extra: str) -> dict[str, str]:
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    return {
        "changeType": "created",
        "notificationUrl": url + "/notify",
        "resource": f"/users/{SHARED}/mailFolders('inbox')/messages",
        "expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "clientState": "s3cret",
        **extra,
    }


def test_subscription_handshake_notification_and_lifecycle(emu: RunningEmulator) -> None:
    with subscriber() as hook, client(emu, app_token(emu)) as app:
        body = _subscription(hook.url, lifecycleNotificationUrl=hook.url + "/life")
        created = app.post("/subscriptions", json=body)
        assert created.status_code == 201, created.text
        sub = created.json()
        assert sub["clientState"] == "s3cret"
        assert hook.received == []  # validation requests are answered, not recorded
        deliver(emu, SHARED, raw_mail(SHARED, "Notify me"))
        got = hook.wait(1)
        note = got[0]["body"]["value"][0]
        assert got[0]["path"] == "/notify"
        assert note["subscriptionId"] == sub["id"]
        assert note["clientState"] == "s3cret"
        assert note["changeType"] == "created"
        msg = app.get(f"/users/{SHARED}/messages/{note['resourceData']['id']}")
        assert msg.json()["subject"] == "Notify me"
        with control(emu) as ctl:
            fired = ctl.post(f"/subscriptions/{sub['id']}/lifecycle", json={"event": "missed"})
            assert fired.status_code == 202
        life = hook.wait(2)[1]
        assert life["path"] == "/life"
        assert life["body"]["value"][0]["lifecycleEvent"] == "missed"
        renewed = app.patch(
            f"/subscriptions/{sub['id']}",
            json={"expirationDateTime": _subscription(hook.url, 120)["expirationDateTime"]},
        )
        assert renewed.status_code == 200
        assert [s["id"] for s in app.get("/subscriptions").json()["value"]] == [sub["id"]]
        assert app.delete(f"/subscriptions/{sub['id']}").status_code == 204
        assert app.get(f"/subscriptions/{sub['id']}").status_code == 404


def test_subscription_rejections(emu: RunningEmulator) -> None:
    with subscriber(echo=False) as bad_hook, client(emu, app_token(emu)) as app:
        failed = app.post("/subscriptions", json=_subscription(bad_hook.url))
        assert failed.status_code == 400
        assert error_code(failed) == "ValidationError"
    with subscriber() as hook, client(emu, app_token(emu)) as app:
        too_long = app.post("/subscriptions", json=_subscription(hook.url, minutes=4231))
        assert too_long.status_code == 400
        plain_http = _subscription("http://example.com")
        assert app.post("/subscriptions", json=plain_http).status_code == 400
    with subscriber() as hook, as_user(emu, "svc-replygate@contoso.test") as g:
        shared = g.post("/subscriptions", json=_subscription(hook.url))
        assert shared.status_code == 403  # delegated subscriptions: own mailbox only
