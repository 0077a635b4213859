"""Discovery documents: OpenID configuration, JWKS and instance discovery."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from m365emu.identity import errors
from m365emu.identity.context import base_url, resolve_tenant, state_of


async def openid_configuration(request: Request) -> Response:
    """OpenID Connect metadata of the v2.0 endpoint.

    https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri
    Endpoints keep the tenant segment of the request (as Entra does); `issuer` names the
    tenant id. MSAL needs `authorization_endpoint` and `token_endpoint`, both https. Endpoints
    the emulator does not serve (userinfo, device code, kerberos) are left out.
    """
    state = state_of(request)
    segment = request.path_params["tenant"]
    try:
        resolve_tenant(state, segment)
    except errors.AadError as exc:
        exc.error = "invalid_tenant"  # what Entra answers on discovery documents
        return exc.json_response(request, state.now())
    base = base_url(request)
    tid = state.tenant.id
    issuer = (
        f"{base}/{tid}/v2.0"
        if segment.lower() not in ("common", "organizations")
        else (f"{base}/{{tenantid}}/v2.0")
    )
    root = f"{base}/{segment}"
    doc = {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
            "oid",
        ],
        "tenant_region_scope": "EU",
        "cloud_instance_name": urlsplit(base).hostname,
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
        "code_challenge_methods_supported": ["plain", "S256"],
    }
    return JSONResponse(doc)


async def keys(request: Request) -> Response:
    """The signing keys (JWKS) of the tenant.

    https://learn.microsoft.com/entra/identity-platform/access-tokens (validating tokens)
    """
    state = state_of(request)
    try:
        resolve_tenant(state, request.path_params["tenant"])
    except errors.AadError as exc:
        exc.error = "invalid_tenant"
        return exc.json_response(request, state.now())
    return JSONResponse({"keys": [state.signing_key.jwk()]})


async def instance_discovery(request: Request) -> Response:
    """Instance (authority) discovery, for clients that do not disable it.

    Shape of https://login.microsoftonline.com/common/discovery/instance as MSAL reads it
    (https://learn.microsoft.com/entra/identity-platform/msal-client-application-configuration#authority).
    """
    base = base_url(request)
    host = urlsplit(base).netloc
    endpoint = request.query_params.get(
        "authorization_endpoint", f"{base}/common/oauth2/v2.0/authorize"
    )
    tenant = urlsplit(endpoint).path.strip("/").split("/")[0] or "common"
    return JSONResponse(
        {
            "tenant_discovery_endpoint": f"{base}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }
    )
