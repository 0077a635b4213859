"""Users, mail folders and inbox rules."""

from __future__ import annotations

import secrets
from typing import Any

from m365emu import rules
from m365emu.graph import odata
from m365emu.graph.access import require, require_user_read
from m365emu.graph.core import Ctx, GraphResponse, route
from m365emu.graph.errors import GraphError, bad_request, not_found
from m365emu.graph.serialize import folder_json, user_json
from m365emu.mailstore import Folder


@route("GET", "", scope="user")
async def get_user(ctx: Ctx) -> GraphResponse:
    """`GET /me`, `GET /users/{id | userPrincipalName}`. https://learn.microsoft.com/graph/api/user-get"""
    require_user_read(ctx)
    assert ctx.user is not None
    body = {"@odata.context": f"{ctx.graph_base}/$metadata#users/$entity", **user_json(ctx.user)}
    select = odata.parse(ctx.req.query, default_top=None).select
    if select:
        body = {k: v for k, v in body.items() if k.startswith("@") or k in select or k == "id"}
    return ctx.ok(body)


def _folder(ctx: Ctx, ref: str) -> Folder:
    folder = ctx.box().folder(ref)
    if folder is None:
        raise not_found()
    return folder


def _folder_json(ctx: Ctx, folder: Folder) -> dict[str, Any]:
    mb = ctx.box()
    data: dict[str, Any] = mb.cached(
        ("folder", folder.id), ctx.mail.store.seq, lambda: folder_json(mb, folder)
    )
    return dict(data)


def _list(ctx: Ctx, folders: list[Folder]) -> GraphResponse:
    q = odata.parse(ctx.req.query)
    keep = odata.matcher(q.filter, {"displayname": lambda f: f.display_name})
    items = [f for f in folders if keep(f)]
    if ctx.req.query.get("includeHiddenFolders", "").lower() != "true":
        items = [f for f in items if not f.hidden]
    top = q.top or 10
    page = items[q.skip : q.skip + top]
    mb = ctx.box()
    values = [_folder_json(ctx, f) for f in page]
    if q.select:
        values = [{k: v for k, v in d.items() if k in q.select or k == "id"} for d in values]
    out: dict[str, Any] = {
        "@odata.context": f"{ctx.graph_base}/$metadata#users('{mb.user_id}')/mailFolders",
        "value": values,
    }
    if q.skip + top < len(items):
        params = {**ctx.req.query, "$skip": str(q.skip + top), "$top": str(top)}
        out["@odata.nextLink"] = ctx.link(params)
    return ctx.ok(out)


@route("GET", "/mailFolders")
async def list_folders(ctx: Ctx) -> GraphResponse:
    """Direct children of the root. https://learn.microsoft.com/graph/api/user-list-mailfolders"""
    require(ctx, "read")
    mb = ctx.box()
    return _list(ctx, mb.children(mb.root_id))


@route("GET", "/mailFolders/{id}")
async def get_folder(ctx: Ctx) -> GraphResponse:
    """A folder by id or well-known name. https://learn.microsoft.com/graph/api/mailfolder-get"""
    require(ctx, "read")
    return ctx.ok(_folder_json(ctx, _folder(ctx, ctx.params[0])))


@route("GET", "/mailFolders/{id}/childFolders")
async def list_children(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/mailfolder-list-childfolders"""
    require(ctx, "read")
    return _list(ctx, ctx.box().children(_folder(ctx, ctx.params[0]).id))


async def _create(ctx: Ctx, parent: Folder) -> GraphResponse:
    require(ctx, "write")
    name = str(ctx.json().get("displayName") or "").strip()
    if not name:
        raise bad_request("The displayName property is required.", "ErrorInvalidParameter")
    mb = ctx.box()
    if any(f.display_name.lower() == name.lower() for f in mb.children(parent.id)):
        raise GraphError(
            409, "ErrorFolderExists", "A folder with the specified name already exists."
        )
    folder = ctx.mail.store.create_folder(mb, parent.id, name)
    return ctx.ok(folder_json(mb, folder), 201)


@route("POST", "/mailFolders")
async def create_folder(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/user-post-mailfolders"""
    mb = ctx.box()
    return await _create(ctx, mb.folders[mb.root_id])


@route("POST", "/mailFolders/{id}/childFolders")
async def create_child(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/mailfolder-post-childfolders"""
    return await _create(ctx, _folder(ctx, ctx.params[0]))


# -- inbox rules -------------------------------------------------------------------------------


def _inbox_only(ctx: Ctx) -> None:
    folder = _folder(ctx, ctx.params[0])
    if folder.well_known != "inbox":
        raise bad_request("Rules can only be managed on the Inbox folder.", "ErrorInvalidRequest")


def _rule(ctx: Ctx) -> dict[str, Any]:
    rule = next((r for r in ctx.box().rules if r["id"] == ctx.params[1]), None)
    if rule is None:
        raise not_found()
    return rule


@route("GET", "/mailFolders/{id}/messageRules")
async def list_rules(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/mailfolder-list-messagerules"""
    require(ctx, "settings_read")
    _inbox_only(ctx)
    return ctx.ok({"value": sorted(ctx.box().rules, key=lambda r: int(r.get("sequence") or 0))})


@route("POST", "/mailFolders/{id}/messageRules")
async def create_rule(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/mailfolder-post-messagerules"""
    require(ctx, "settings_write")
    _inbox_only(ctx)
    body = ctx.json()
    problem = rules.validate(body)
    if problem:
        raise bad_request(problem, "ErrorInvalidRequest")
    target = (body.get("actions") or {}).get("moveToFolder")
    if target and ctx.box().folder(str(target)) is None:
        raise not_found()
    rule = {
        "id": "AQAAA" + secrets.token_urlsafe(12) + "=",
        "displayName": body["displayName"],
        "sequence": int(body.get("sequence") or len(ctx.box().rules) + 1),
        "isEnabled": bool(body.get("isEnabled", True)),
        "hasError": False,
        "isReadOnly": False,
        "conditions": body.get("conditions") or {},
        "actions": body.get("actions") or {},
        "exceptions": body.get("exceptions") or {},
    }
    ctx.box().rules.append(rule)
    return ctx.ok(rule, 201)


@route("GET", "/mailFolders/{id}/messageRules/{id}")
async def get_rule(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/messagerule-get"""
    require(ctx, "settings_read")
    _inbox_only(ctx)
    return ctx.ok(_rule(ctx))


@route("PATCH", "/mailFolders/{id}/messageRules/{id}")
async def update_rule(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/messagerule-update"""
    require(ctx, "settings_write")
    _inbox_only(ctx)
    rule = _rule(ctx)
    changes = {k: v for k, v in ctx.json().items() if k not in ("id", "hasError", "isReadOnly")}
    problem = rules.validate({**rule, **changes})
    if problem:
        raise bad_request(problem, "ErrorInvalidRequest")
    rule.update(changes)
    return ctx.ok(rule)


@route("DELETE", "/mailFolders/{id}/messageRules/{id}")
async def delete_rule(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/messagerule-delete"""
    require(ctx, "settings_write")
    _inbox_only(ctx)
    ctx.box().rules.remove(_rule(ctx))
    return GraphResponse(204, media_type=None)
