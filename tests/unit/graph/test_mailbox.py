"""GraphReplyMailbox: folder paths, delta pages, batch disposal."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx
import pytest

from replygate.graph.errors import CursorExpired, FolderNotFound
from replygate.graph.mailbox import GraphReplyMailbox
from replygate.services.mail_ports import Disposal, DisposalKind

from .fakes import Script, graph_error, make_client

BOX = "approvals@contoso.test"


def folders(*names: str) -> httpx.Response:
    return httpx.Response(200, json={"value": [{"id": f"id-{n}", "displayName": n} for n in names]})


def test_well_known_root_then_child_by_name_case_insensitively() -> None:
    script = Script(httpx.Response(200, json={"id": "inbox-id"}), folders("Approvals"))
    client, _ = make_client(script)
    assert GraphReplyMailbox(client, BOX).resolve_folder("inbox/approvals") == "id-Approvals"
    child = script.requests[1]
    assert child.url.path.endswith("/mailFolders/inbox-id/childFolders")
    assert child.url.params["$filter"] == "displayName eq 'approvals'"


def test_missing_folder_lists_what_exists_at_that_level() -> None:
    script = Script(
        httpx.Response(200, json={"id": "inbox-id"}), folders(), folders("Builds", "Releases")
    )
    client, _ = make_client(script)
    with pytest.raises(FolderNotFound) as caught:
        GraphReplyMailbox(client, BOX).resolve_folder("Inbox/Approvals")
    assert caught.value.existing == ("Builds", "Releases")
    assert "Inbox" in caught.value.message
    assert "Builds, Releases" in caught.value.fix


def test_quotes_in_folder_names_are_escaped() -> None:
    script = Script(folders("Bob's"))
    client, _ = make_client(script)
    GraphReplyMailbox(client, BOX).resolve_folder("Bob's")
    assert script.requests[0].url.params["$filter"] == "displayName eq 'Bob''s'"


def message(i: int) -> dict[str, object]:
    return {
        "id": f"m{i}",
        "internetMessageId": f"<{i}@x>",
        "subject": f"Re: [RG-prod-{i}]",
        "from": {"emailAddress": {"address": "alice@contoso.test", "name": "Alice"}},
        "toRecipients": [{"emailAddress": {"address": BOX}}],
        "receivedDateTime": "2026-01-05T09:00:00Z",
        "isDraft": False,
        "internetMessageHeaders": [{"name": "Received", "value": "from x"}],
        "body": {"contentType": "html", "content": "<p>APPROVE</p>"},
    }


def test_delta_pages_follow_next_link_and_end_with_delta_link() -> None:
    script = Script(
        httpx.Response(200, json={"value": [message(1)], "@odata.nextLink": "https://g/next"}),
        httpx.Response(
            200,
            json={
                "value": [{"id": "m0", "@removed": {"reason": "deleted"}}],
                "@odata.deltaLink": "https://g/delta",
            },
        ),
    )
    client, _ = make_client(script)
    mailbox = GraphReplyMailbox(client, BOX, page_size=25)
    first = mailbox.changes("f1", None)
    assert first.more
    assert first.next_cursor == "https://g/next"
    got = first.messages[0]
    assert got.from_[0].address == "alice@contoso.test"
    assert got.body_html == "<p>APPROVE</p>"
    assert got.headers == (("Received", "from x"),)
    assert got.received_at is not None
    assert got.received_at.tzinfo is not None
    request = script.requests[0]
    assert "internetMessageHeaders" in request.url.params["$select"]
    assert "odata.maxpagesize=25" in request.headers["Prefer"]
    second = mailbox.changes("f1", first.next_cursor)
    assert not second.more
    assert second.removed_ids == ["m0"]
    assert second.next_cursor == "https://g/delta"
    assert str(script.requests[1].url) == "https://g/next"


def test_expired_cursor_raises_cursor_expired() -> None:
    client, _ = make_client(Script(graph_error(410, "syncStateNotFound")))
    with pytest.raises(CursorExpired):
        GraphReplyMailbox(client, BOX).changes("f1", "https://g/delta")


def test_headers_absent_from_delta_are_none_so_the_caller_fetches_mime() -> None:
    raw = message(1)
    del raw["internetMessageHeaders"]
    client, _ = make_client(
        Script(httpx.Response(200, json={"value": [raw], "@odata.deltaLink": "d"}))
    )
    assert GraphReplyMailbox(client, BOX).changes("f1", None).messages[0].headers is None


def report(i: int) -> dict[str, object]:
    raw = message(i)
    raw["internetMessageHeaders"] = [
        {"name": "Received", "value": "from x"},
        {"name": "Content-Type", "value": "multipart/report; report-type=delivery-status"},
    ]
    return raw


def test_reports_on_a_page_have_their_mime_fetched_in_one_batch() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/delta"):
            page = [message(1), report(2), report(3), report(4)]
            return httpx.Response(200, json={"value": page, "@odata.deltaLink": "d"})
        steps = json.loads(request.content)["requests"]
        out = [
            {"id": s["id"], "status": 200, "body": base64.b64encode(s["url"].encode()).decode()}
            if "/m4/" not in s["url"]
            else {"id": s["id"], "status": 503, "body": {"error": {"code": "x"}}}
            for s in steps
        ]
        return httpx.Response(200, json={"responses": out})

    script = Script(handler=answer)
    client, _ = make_client(script)
    box = GraphReplyMailbox(client, BOX)
    box.changes("f1", None)
    batch = json.loads(script.requests[1].content)["requests"]
    assert [s["url"] for s in batch] == [f"/users/{BOX}/messages/m{i}/$value" for i in (2, 3, 4)]
    assert box.fetch_mime("m2") == f"/users/{BOX}/messages/m2/$value".encode()
    assert box.fetch_mime("m3") == f"/users/{BOX}/messages/m3/$value".encode()
    assert len(script.requests) == 2  # the delta page and one $batch


def test_a_report_the_batch_could_not_fetch_is_fetched_alone() -> None:
    answers = Script(
        httpx.Response(200, json={"value": [report(1), report(2)], "@odata.deltaLink": "d"}),
        httpx.Response(
            200,
            json={
                "responses": [
                    {"id": "0", "status": 200, "body": base64.b64encode(b"one").decode()},
                    {"id": "1", "status": 503, "body": {"error": {"code": "ServiceUnavailable"}}},
                ]
            },
        ),
        httpx.Response(200, content=b"two"),
    )
    client, _ = make_client(answers)
    box = GraphReplyMailbox(client, BOX)
    box.changes("f1", None)
    assert (box.fetch_mime("m1"), box.fetch_mime("m2")) == (b"one", b"two")
    assert answers.requests[2].url.path == f"/v1.0/users/{BOX}/messages/m2/$value"


def test_a_single_report_is_not_batched() -> None:
    answers = Script(
        httpx.Response(200, json={"value": [message(1), report(2)], "@odata.deltaLink": "d"}),
        httpx.Response(200, content=b"raw"),
    )
    client, _ = make_client(answers)
    box = GraphReplyMailbox(client, BOX)
    box.changes("f1", None)
    assert len(answers.requests) == 1
    assert box.fetch_mime("m2") == b"raw"


def test_disposal_is_batched_by_twenty_and_404_counts_as_done() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        steps = json.loads(request.content)["requests"]
        out = []
        for step in steps:
            gone = step["url"].endswith("/m3/move")
            out.append(
                {
                    "id": step["id"],
                    "status": 404 if gone else 201,
                    "body": {"id": "new-" + step["id"]},
                }
            )
        return httpx.Response(200, json={"responses": out})

    script = Script(handler=answer)
    client, _ = make_client(script)
    items = [Disposal(f"m{i}", DisposalKind.MOVE, "done-folder") for i in range(45)]
    results = GraphReplyMailbox(client, BOX).dispose(items)
    sizes = [len(json.loads(r.content)["requests"]) for r in script.requests]
    assert sizes == [20, 20, 5]
    assert all(r.done for r in results)
    assert [r.message_id for r in results] == [f"m{i}" for i in range(45)]
    assert results[3].new_id is None
    assert results[4].new_id == "new-4"
    step = json.loads(script.requests[0].content)["requests"][0]
    assert step["body"] == {"destinationId": "done-folder"}
    assert step["headers"]["Prefer"] == 'IdType="ImmutableId"'


def test_delete_moves_to_deleted_items_and_purge_deletes_permanently() -> None:
    script = Script(
        httpx.Response(
            200, json={"responses": [{"id": "0", "status": 201}, {"id": "1", "status": 204}]}
        )
    )
    client, _ = make_client(script)
    GraphReplyMailbox(client, BOX).dispose(
        [Disposal("a", DisposalKind.DELETE), Disposal("b", DisposalKind.PURGE)]
    )
    steps = json.loads(script.requests[0].content)["requests"]
    assert steps[0]["body"] == {"destinationId": "deleteditems"}
    assert steps[1]["url"].endswith("/messages/b/permanentDelete")


def test_throttled_inner_requests_are_retried_once_after_retry_after() -> None:
    script = Script(
        httpx.Response(
            200,
            json={
                "responses": [
                    {"id": "0", "status": 429, "headers": {"Retry-After": "3"}},
                    {"id": "1", "status": 201},
                ]
            },
        ),
        httpx.Response(200, json={"responses": [{"id": "0", "status": 201}]}),
    )
    client, sleeps = make_client(script)
    results = GraphReplyMailbox(client, BOX).dispose(
        [Disposal("a", DisposalKind.DELETE), Disposal("b", DisposalKind.DELETE)]
    )
    assert [r.done for r in results] == [True, True]
    assert sleeps.calls == [3.0]
    assert len(json.loads(script.requests[1].content)["requests"]) == 1


def test_failed_inner_request_is_reported_not_raised() -> None:
    body = {"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}}
    script = Script(
        httpx.Response(200, json={"responses": [{"id": "0", "status": 403, "body": body}]})
    )
    client, _ = make_client(script)
    [result] = GraphReplyMailbox(client, BOX).dispose([Disposal("a", DisposalKind.DELETE)])
    assert not result.done
    assert result.error_code == "ErrorAccessDenied"


def test_first_round_can_skip_mail_received_before_a_moment() -> None:
    script = Script(httpx.Response(200, json={"value": [], "@odata.deltaLink": "d"}))
    client, _ = make_client(script)
    GraphReplyMailbox(client, BOX).changes("f1", None, since=datetime(2026, 1, 5, 9, tzinfo=UTC))
    assert script.requests[0].url.params["$filter"] == "receivedDateTime ge 2026-01-05T09:00:00Z"
