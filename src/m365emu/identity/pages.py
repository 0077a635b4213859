"""HTML pages of the browser sign-in: account picker, consent, form_post, sign-out.

The pages are plain, script-free HTML (except form_post's auto-submit) and mark their forms
with `data-*` attributes so that m365emu.testing's browser helper can drive them.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

from m365emu.tenant import AppRegistration, User

_STYLE = """body{font-family:Segoe UI,Helvetica,Arial,sans-serif;background:#f2f2f2;margin:0}
main{background:#fff;max-width:440px;margin:48px auto;padding:32px 44px;box-shadow:0 2px 6px #0003}
h1{font-size:24px;font-weight:600}form.account{margin:0}
button.tile{display:block;width:100%;text-align:left;padding:12px;border:0;background:none;
font-size:15px;cursor:pointer}button.tile:hover,.hinted button.tile{background:#e6e6e6}
small{color:#555}.banner{color:#666;font-size:13px}input[type=text],input[type=password]
{width:100%;padding:6px;margin:4px 0}"""


def _page(title: str, body: str, *, kind: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f'</title><style>{_STYLE}</style></head><body data-page="{kind}"><main>'
        f'<p class="banner">m365emu: emulated Microsoft sign-in</p>{body}</main></body></html>'
    )
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return HTMLResponse(html, status_code=status, headers=headers)


def account_picker(
    *,
    action: str,
    ctx: str,
    users: list[User],
    hinted: User | None,
    signed_in: User | None,
    app: AppRegistration,
    force_login: bool,
) -> HTMLResponse:
    """ "Pick an account": one form per account, plus "Use another account"."""
    title = "Sign in" if force_login else "Pick an account"
    tiles = []
    for user in users:
        marks = []
        if signed_in is not None and user.id == signed_in.id:
            marks.append("Signed in")
        cls = "account hinted" if hinted is not None and user.id == hinted.id else "account"
        autofocus = " autofocus" if "hinted" in cls else ""
        tiles.append(
            f'<form class="{cls}" method="post" action="{escape(action)}" '
            f'data-upn="{escape(user.upn)}"><input type="hidden" name="ctx" value="{ctx}">'
            f'<input type="hidden" name="login" value="{escape(user.upn)}">'
            f'<button class="tile" type="submit"{autofocus}><b>{escape(user.display_name)}</b>'
            f"<br><small>{escape(user.upn)} {' · '.join(marks)}</small></button></form>"
        )
    other_value = escape(hinted.upn) if hinted is not None else ""
    other = (
        f'<h2>Use another account</h2><form class="other" method="post" action="{escape(action)}"'
        f' data-upn=""><input type="hidden" name="ctx" value="{ctx}">'
        f'<input type="text" name="login" placeholder="someone@example.com" value="{other_value}">'
        '<input type="password" name="passwd" placeholder="Password (not checked)">'
        '<button type="submit">Next</button></form>'
    )
    body = (
        f"<h1>{title}</h1><p>to continue to <b>{escape(app.display_name)}</b></p>"
        + "".join(tiles)
        + other
    )
    return _page(title, body, kind="account-picker")


def consent(
    *, action: str, ctx: str, app: AppRegistration, user: User, scopes: list[str]
) -> HTMLResponse:
    """ "Permissions requested": Accept grants (tenant-wide) consent, Cancel declines."""
    items = "".join(f"<li>{escape(s)}</li>" for s in scopes) or "<li>Sign you in</li>"
    body = (
        f"<h1>Permissions requested</h1><p><b>{escape(app.display_name)}</b> would like to, "
        f"for {escape(user.upn)}:</p><ul>{items}</ul>"
        f'<form class="consent" method="post" action="{escape(action)}">'
        f'<input type="hidden" name="ctx" value="{ctx}">'
        '<button type="submit" name="accept" value="yes">Accept</button> '
        '<button type="submit" name="accept" value="no">Cancel</button></form>'
    )
    return _page("Permissions requested", body, kind="consent")


def form_post(action: str, fields: dict[str, str]) -> HTMLResponse:
    """response_mode=form_post: a form that posts the response to the app by itself."""
    inputs = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )
    html = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Working...</title></head>'
        '<body data-page="form-post" onload="document.forms[0].submit()">'
        f'<form method="POST" name="hiddenform" action="{escape(action)}">{inputs}'
        "<noscript><p>Script is disabled. Click Submit to continue.</p>"
        '<input type="submit" value="Submit"></noscript></form></body></html>'
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def signed_out() -> HTMLResponse:
    body = "<h1>You signed out of your account</h1><p>It's a good idea to close all windows.</p>"
    return _page("Signed out", body, kind="signed-out")
