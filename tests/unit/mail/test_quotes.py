"""Quote, header, signature and service-text stripping, per client family."""

from __future__ import annotations

import pytest

from replygate.mail.html_text import html_to_text
from replygate.mail.quotes import DEFAULT_MARKERS, ServiceMarkers, new_text

REQUEST = """Deploy payments-api 2.3.1 to production

Jonas Berg asks for your approval.

Environment: production
Version:     2.3.1

Reply with APPROVE or REJECT on the first line; anything after it is your comment.

Approve: mailto:release-gate@contoso.com?subject=APPROVE%20%5BRG-prod-7KQ2M9XW4D%5D
Reject:  mailto:release-gate@contoso.com?subject=REJECT%20%5BRG-prod-7KQ2M9XW4D%5D

--- Please keep this line and everything below it in your reply ---
Reference: RG-prod-7KQ2M9XW4D"""


def quoted(text: str = REQUEST) -> str:
    return "\n".join(f"> {line}".rstrip() for line in text.splitlines())


def only_new(text: str) -> str:
    result = new_text(text)
    for leak in ("asks for your approval", "Reply with APPROVE", "mailto:", "Reference: RG-",
                 "Please keep this line", "Environment:"):  # fmt: skip
        assert leak not in result
    return result


def test_outlook_desktop_plain_original_message_separator() -> None:
    text = (
        "Approved\n\nGo after 14:00.\n\n-----Original Message-----\n"
        "From: Contoso Release Gate <release-gate@contoso.com>\nSent: Tuesday, March 4, 2025\n"
        f"To: Priya\nSubject: [RG-prod-7KQ2M9XW4D] Deploy\n\n{REQUEST}"
    )
    assert only_new(text) == "Approved\n\nGo after 14:00."


def test_outlook_desktop_header_block_without_separator() -> None:
    text = (
        f"Approved – fine.\n\nMarc\n\nFrom: Gate <g@contoso.com>\nSent: Tuesday\nTo: x\n\n{REQUEST}"
    )
    assert only_new(text) == "Approved – fine.\n\nMarc"


def test_outlook_web_underscore_line_and_header_block() -> None:
    text = f"Approve\n\n________________________________\nFrom: Gate\nSent: Wed\n\n{REQUEST}"
    assert only_new(text) == "Approve"


def test_outlook_mobile_footer_then_quote() -> None:
    quote = f"{'_' * 32}\nFrom: Gate\nSent: x\n{REQUEST}"
    text = f"Approved\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n{quote}"
    assert only_new(text) == "Approved"
    android = "No\n\nWait.\n\nGet Outlook for Android<https://aka.ms/AAb9ysg>\n"
    assert only_new(android + f"{'_' * 32}\nFrom: Gate\nSent: x\n{REQUEST}") == "No\n\nWait."


def test_outlook_bold_header_block_as_rendered_by_other_clients() -> None:
    text = f"Reject\n\n*From:* Gate <g@contoso.com>\n*Sent:* Tuesday\n*To:* x\n\n{REQUEST}"
    assert only_new(text) == "Reject"


@pytest.mark.parametrize(
    "header",
    [
        "Von: Gate <g@contoso.com>\nGesendet: Dienstag, 4. März 2025 11:12\nAn: x\nBetreff: y",
        "De : Gate <g@contoso.com>\nEnvoyé : jeudi 6 mars 2025 16:05\nÀ : x\nObjet : y",
        "De: Gate <g@contoso.com>\nEnviado: miércoles, 5 de marzo de 2025\nPara: x\nAsunto: y",
        "Van: Gate <g@contoso.com>\nVerzonden: maandag 10 maart 2025\nAan: x\nOnderwerp: y",
        "-----Ursprüngliche Nachricht-----\nVon: Gate",
        "-----Message d'origine-----\nDe : Gate",
        "-------- Mensaje original --------",
        "----- Oorspronkelijk bericht -----",
        "-----Originalmeddelande-----",
        "---------- Forwarded message ---------\nFrom: Gate",
        "-----original   message-----",
    ],
)
def test_localized_header_blocks_and_separators(header: str) -> None:
    assert only_new(f"Genehmigt.\n\nBitte prüfen.\n\n{header}\n\n{REQUEST}") == (
        "Genehmigt.\n\nBitte prüfen."
    )


@pytest.mark.parametrize(
    "attribution",
    [
        "On Tue, 4 Mar 2025 at 18:12, Contoso Release Gate <release-gate@contoso.com> wrote:",
        "On Wed, 5 Mar 2025 at 14:10, Contoso Release Gate <\nrelease-gate@contoso.com> wrote:",
        "On Wed, Mar 5, 2025 at 5:40 AM Contoso Release Gate <release-gate@contoso.com>\nwrote:",
        "On Wed, Mar 5, 2025 at 5:40 AM Contoso\nRelease Gate <release-gate@contoso.com>\nwrote:",
        "Am Mo., 10. März 2025 um 10:20 Uhr schrieb Contoso Release Gate (dev) <\nx@contoso.com>:",
        "Am 05.03.25 um 09:40 schrieb Contoso Release Gate:",
        "Le mar. 4 mars 2025 à 11:12, Contoso Release Gate <g@contoso.com> a écrit :",
        "El jue, 6 mar 2025 a las 16:05, Contoso (<g@contoso.com>)\nescribió:",
        "Op di 4 mrt 2025 om 11:12 schreef Contoso Release Gate <\ng@contoso.com>:",
        "Den 4 mars 2025 kl. 11:12 skrev Contoso Release Gate <g@contoso.com>:",
        "Il giorno mar 4 mar 2025 alle 11:12 Contoso <g@contoso.com> ha scritto:",
        "On 10/03/2025 10:20, Contoso Release Gate (dev) wrote:",
    ],
)
def test_gmail_thunderbird_attributions_top_posted(attribution: str) -> None:
    text = f"Rejected: not now.\n\n{attribution}\n\n{quoted()}\n"
    assert only_new(text) == "Rejected: not now."


def test_any_line_ending_in_a_colon_directly_above_a_quote_is_an_attribution() -> None:
    text = f"Approved\n\nSomeone said something like this:\n{quoted()}\n"
    assert only_new(text) == "Approved"
    # With a blank line between, it is the approver's own text introducing a quote.
    assert only_new(f"Approved\n\nAbout this:\n\n{quoted()}") == "Approved\n\nAbout this:"


def test_apple_mail_quoted_attribution() -> None:
    attribution = "> On 6 Mar 2025, at 16:05, Gate <g@contoso.com> wrote:"
    text = f"Approved.\n\nSofia\n\n{attribution}\n>\n{quoted()}"
    assert only_new(text) == "Approved.\n\nSofia"


def test_iphone_footer_and_quote() -> None:
    text = (
        f"Deny – red\n\nSent from my iPhone\n\n> On 4 Mar 2025, at 11:12, Gate wrote:\n{quoted()}"
    )
    assert only_new(text) == "Deny – red"


@pytest.mark.parametrize(
    "footer",
    ["Sent from my Galaxy", "Sent from Yahoo Mail on Android",
     "Sent with Proton Mail secure email.",
     "Sent from Mail for Windows", "Von meinem iPad gesendet", "Envoyé de mon iPhone",
     "Enviado desde mi iPhone", "Verzonden vanaf mijn iPhone"],
)  # fmt: skip
def test_sent_from_footers(footer: str) -> None:
    assert only_new(f"Approved\n\n{footer}") == "Approved"


def test_gmail_bottom_posting_with_wrapped_attribution_and_signature() -> None:
    text = (
        "On Wed, Mar 5, 2025 at 5:40 AM Contoso Release Gate <release-gate@contoso.com>\n"
        f"wrote:\n\n{quoted()}\n\nApproved, go ahead.\n\n-- \nAna Souza\nSRE, on call"
    )
    assert only_new(text) == "Approved, go ahead."


def test_thunderbird_bottom_posting() -> None:
    text = (
        f"On 10/03/2025 10:20, Gate wrote:\n{quoted()}\n\nApproved\n\nPlan matches.\n\n-- \nTomasz"
    )
    assert only_new(text) == "Approved\n\nPlan matches."


def test_interleaved_quote_keeps_both_new_paragraphs() -> None:
    text = "> question one\nAnswer one\n> question two\nAnswer two"
    assert new_text(text) == "Answer one\nAnswer two"


def test_signature_dash_dash_with_and_without_space() -> None:
    assert new_text("Rejected\n\n-- \nJana\nApproved Scanning Vendor") == "Rejected"
    assert new_text("Rejected\n\n--\nJana") == "Rejected"
    assert new_text("\n\n-- \nNo plan survives contact with production.") == ""


def test_notes_attribution_and_table_form() -> None:
    notes = f'Approved\n\n-----"Contoso Gate" <g@contoso.com> wrote: -----\n\n{REQUEST}'
    assert only_new(notes) == "Approved"
    header = "From:\tContoso Gate\nTo:\tPriya\nDate:\t04.03.2025 11:12\nSubject:\t[RG]"
    table = f"Approved\n\n{header}\n\n{REQUEST}"
    assert only_new(table) == "Approved"


def test_disclaimer_block_at_the_end() -> None:
    text = (
        "Reject\n\nIssue through Key Vault first.\n\nDaniel\n\n"
        "CONFIDENTIALITY NOTICE: This e-mail and any files transmitted with it are confidential."
        "\nNo liability is accepted."
    )
    assert new_text(text) == "Reject\n\nIssue through Key Vault first.\n\nDaniel"
    assert new_text("Approved\n\nThis e-mail and any attachments are confidential.") == "Approved"


def test_unquoted_request_text_is_removed_even_without_a_header() -> None:
    titled = ServiceMarkers(title="Deploy payments-api 2.3.1 to production")
    assert new_text(f"Approved, go ahead.\n\n{REQUEST}", service_markers=titled) == (
        "Approved, go ahead."
    )
    assert only_new(f"Approved, go ahead.\n\n{REQUEST}").startswith("Approved, go ahead.")
    kept_block = "Approved\n\n--- Please keep this line and everything below it in your reply ---\n"
    assert only_new(kept_block + "Reference: RG-prod-7KQ2M9XW4D") == "Approved"
    assert only_new("\n\n--- Please keep this line and everything below it in your reply ---") == ""


def test_title_above_unquoted_request_text_is_removed_when_known() -> None:
    markers = ServiceMarkers(title="Deploy payments-api 2.3.1 to production")
    assert new_text(f"Yes\n\n{REQUEST}", service_markers=markers) == "Yes"
    assert new_text(f"Yes\n\n{REQUEST}", service_markers=DEFAULT_MARKERS).startswith("Yes")


def test_text_after_the_reference_line_is_kept() -> None:
    text = f"{REQUEST}\n\nApproved, bottom-posted under an unquoted request."
    titled = ServiceMarkers(title="Deploy payments-api 2.3.1 to production")
    assert new_text(text, service_markers=titled) == (
        "Approved, bottom-posted under an unquoted request."
    )


def test_html_gmail_quote_and_outlook_separators() -> None:
    gmail = (
        '<div dir="ltr">Approve<br><br>Fine.</div><br><div class="gmail_quote">'
        '<div class="gmail_attr">On Tue, Gate wrote:<br></div><blockquote class="gmail_quote">'
        "Jonas Berg asks for your approval.<br>Reference: RG-prod-7KQ2M9XW4D</blockquote></div>"
    )
    assert new_text(html_to_text(gmail)) == "Approve\n\nFine."
    outlook_web = (
        "<div>Approve</div><div id='appendonsend'></div><hr><div id='divRplyFwdMsg'>"
        "<b>From:</b> Gate<br><b>Sent:</b> Wed</div><div>Jonas Berg asks for your approval."
        "</div><div>Something the client did not mark</div>"
    )
    assert new_text(html_to_text(outlook_web)) == "Approve"
    outlook_desktop = (
        "<p class=MsoNormal>Rejected<o:p></o:p></p><div style='border:none;border-top:solid "
        "#E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'><p><b>From:</b> Gate</p></div><p>Old</p>"
    )
    assert new_text(html_to_text(outlook_desktop)) == "Rejected"


def test_html_quote_markers_of_other_clients() -> None:
    mac = "<div>Approved</div><div style='border-top: 1pt solid #B5C4DF'>From: Gate</div><p>x</p>"
    assert new_text(html_to_text(mac)) == "Approved"
    rerendered = "<div>Approved</div><div id='x_divRplyFwdMsg'>From: Gate</div><p>old text</p>"
    assert new_text(html_to_text(rerendered)) == "Approved"
    mac_section = "<p>Yes</p><div id='OLK_SRC_BODY_SECTION'><p>From: Gate</p></div><p>old</p>"
    assert new_text(html_to_text(mac_section)) == "Yes"
    yahoo = "<div>Reject</div><div class='yahoo_quoted'>On Tue, Gate wrote: old</div><div>x</div>"
    assert new_text(html_to_text(yahoo)) == "Reject\nx"
