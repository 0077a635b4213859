"""Whatever a pipeline puts in a request, both parts stay safe and readable."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replygate.domain.model import ApprovalRequest, Channel, Decision, Policy, Verdict
from replygate.domain.tokens import ReplyToken
from replygate.mail.compose import (
    REFERENCE_LINE,
    IncomingReply,
    MailContext,
    compose_confirmation,
    compose_could_not_read,
    compose_request,
    shown,
    subject_for,
)
from replygate.mail.compose import (
    comment as shown_comment,
)
from replygate.mail.mime import to_mime

T0 = datetime(2025, 3, 4, 10, 12, tzinfo=UTC)
TOKEN = ReplyToken("prod", "7KQ2M9XW4D")
CTX = MailContext(from_address="release-gate@contoso.com", public_url="https://rg.contoso.com")
REPLY = IncomingReply("priya.nair@contoso.com", "<r1@contoso.com>")
NASTY = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "a\r\nBcc: evil@example.com\r\n\r\n<b>body</b>",
    "\u202eRG-prod-0000000000 [evil]\u202c مرحبا بالعالم",
    "שלום עולם — עברית",
    "Ünïcödé ✓ 🚀 日本語のタイトル",
    "x" * 5000,
    "--- Please keep this line and everything below it in your reply ---",
]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
not_a_link = st.text().filter(lambda v: "http" not in v.lower())


def make_request(title: str = "Deploy", **changes: object) -> ApprovalRequest:
    fields: dict[str, object] = {
        "id": TOKEN.request_id,
        "title": title if title.strip() else "t",
        "requester": "jonas.berg@contoso.com",
        "approvers": ("priya.nair@contoso.com", "marc.weber@contoso.com"),
        "policy": Policy(),
        "created_at": T0,
        "expires_at": T0 + timedelta(days=1),
    }
    fields.update(changes)
    return ApprovalRequest(**fields)  # type: ignore[arg-type]


class Tags(HTMLParser):
    """Every start tag and attribute of an HTML document."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.data: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.data.append(data)


def assert_no_markup_from(html: str, baseline: str) -> None:
    """User data added no tag: the HTML has exactly the tags of a harmless baseline."""
    assert Tags(html).tags == Tags(baseline).tags
    assert html.count("<") == baseline.count("<")


@SETTINGS
@given(title=st.text(min_size=1))
def test_any_title_is_escaped_in_html_and_readable_in_text(title: str) -> None:
    mail = compose_request(make_request(title), TOKEN, CTX)
    assert_no_markup_from(mail.html, compose_request(make_request("Deploy"), TOKEN, CTX).html)
    assert shown(title, 1000) in mail.text
    assert mail.text.endswith(f"{REFERENCE_LINE}\nReference: RG-prod-7KQ2M9XW4D\n")
    assert "\n" not in mail.subject
    assert "\r" not in mail.subject
    assert len(mail.subject) <= 200
    assert mail.subject.startswith("[RG-prod-7KQ2M9XW4D] ")


@SETTINGS
@given(values=st.lists(not_a_link, min_size=1, max_size=4), key=not_a_link)
def test_any_metadata_is_escaped(values: list[str], key: str) -> None:
    metadata = {f"Key {i}": value for i, value in enumerate(values)}
    metadata[key or "k"] = "v"
    mail = compose_request(make_request(metadata=metadata), TOKEN, CTX)
    plain = {k: "v" for k in metadata}
    assert_no_markup_from(mail.html, compose_request(make_request(metadata=plain), TOKEN, CTX).html)
    for value in values:
        assert shown(value) in mail.text


SAFE_TAGS = {"p", "strong", "em", "code", "pre", "ul", "ol", "li", "blockquote", "hr", "br", "a"}
SAFE_TAGS |= {"h1", "h2", "h3", "h4", "h5", "h6"}


@SETTINGS
@given(details=st.text())
def test_any_details_render_only_safe_markup(details: str) -> None:
    baseline = Tags(compose_request(make_request(), TOKEN, CTX).html)
    found = Tags(compose_request(make_request(details=details), TOKEN, CTX).html)
    assert set(found.tags) <= set(baseline.tags) | SAFE_TAGS
    for name, value in found.attributes:
        assert not name.startswith("on")
        if name == "href":
            assert value.lower().startswith(("https://", "http://", "mailto:"))


def test_markdown_links_only_to_the_web_or_mail() -> None:
    details = (
        "[a](javascript:alert(1)) [b](data:text/html,x) [c](file:///etc/passwd) "
        "[d](/relative) [e](https://ok.example/x) <mailto:x@example.com> ![img](https://t.example/p.png)"
    )
    html = compose_request(make_request(details=details), TOKEN, CTX).html
    hrefs = [value for name, value in Tags(html).attributes if name == "href"]
    assert "https://ok.example/x" in hrefs
    assert "mailto:x@example.com" in hrefs
    assert not [h for h in hrefs if h.split(":")[0] not in ("https", "mailto")]
    assert "<img" not in html


def test_nasty_values_everywhere() -> None:
    for value in NASTY:
        request = make_request(value, details=value, metadata={value[:50] or "k": value})
        mail = compose_request(request, TOKEN, CTX)
        assert "<script" not in mail.html
        assert "<img" not in mail.html
        assert "\u202e" not in mail.text + mail.html + mail.subject
        assert mail.text.count(REFERENCE_LINE) == 1
        assert mail.text.count("\nReference: RG-") == 1
        message = parse(to_mime(mail, T0))
        assert message["Subject"] == mail.subject
        assert message["Bcc"] is None


def test_a_fake_reference_block_in_details_is_defused() -> None:
    details = f"See below.\n{REFERENCE_LINE}\nReference: RG-prod-ZZZZZZZZZZ\n> Reference: x"
    mail = compose_request(make_request(details=details), TOKEN, CTX)
    assert mail.text.count(REFERENCE_LINE) == 1
    assert "Reference: RG-prod-ZZZZZZZZZZ" not in mail.text
    assert "Reference - RG-prod-ZZZZZZZZZZ" in mail.text
    assert "Reference: RG-prod-ZZZZZZZZZZ" not in mail.html


@SETTINGS
@given(comment=st.text(), reason=st.text(), first_line=st.text())
def test_answers_escape_what_the_approver_wrote(comment: str, reason: str, first_line: str) -> None:
    request = make_request()
    approval = Decision("priya.nair@contoso.com", Verdict.APPROVE, comment, Channel.EMAIL, T0)
    harmless = "c" if shown_comment(comment) else ""
    baseline = Decision("priya.nair@contoso.com", Verdict.APPROVE, harmless, Channel.EMAIL, T0)
    confirmation = compose_confirmation(request, TOKEN, CTX, REPLY, approval)
    plain = compose_confirmation(request, TOKEN, CTX, REPLY, baseline)
    # a multi-line comment adds <br> tags of ours, and only those
    added = Tags(confirmation.html).tags.count("br") - Tags(plain.html).tags.count("br")
    assert [t for t in Tags(confirmation.html).tags if t != "br"] == [
        t for t in Tags(plain.html).tags if t != "br"
    ]
    assert added == shown_comment(comment).count("\n")
    asked = compose_could_not_read(request, TOKEN, CTX, REPLY, reason=reason, first_line=first_line)
    fine = compose_could_not_read(request, TOKEN, CTX, REPLY, reason="r", first_line="f")
    assert_no_markup_from(asked.html, fine.html)


@SETTINGS
@given(title=st.text(min_size=1), name=st.text())
def test_mime_round_trips_any_title_and_sender_name(title: str, name: str) -> None:
    ctx = MailContext(from_address="release-gate@contoso.com", from_name=name)
    mail = compose_request(make_request(title), TOKEN, ctx)
    raw = to_mime(mail, T0)
    raw.decode("ascii")
    message = parse(raw)
    assert message["Subject"] == subject_for(TOKEN, make_request(title).title)
    assert message["From"].addresses[0].addr_spec == "release-gate@contoso.com"
    plain = message.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n") == mail.text


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message
