"""National clouds and the permissions each OAuth mode needs, as data for docs and the UI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from replygate.errors import ConfigurationError


class CloudName(StrEnum):
    GLOBAL = "global"
    US_GOV = "us-gov"  # GCC High (L4)
    US_GOV_DOD = "us-gov-dod"  # DoD (L5)
    CHINA = "china"  # operated by 21Vianet
    CUSTOM = "custom"  # given hosts: the emulator, or a future sovereign cloud


class Mode(StrEnum):
    DELEGATED = "delegated"
    APP_ONLY = "app-only"


@dataclass(frozen=True)
class Cloud:
    name: CloudName
    authority_host: str  # https origin of the identity platform, no trailing slash
    graph_url: str  # https origin of Graph, no version segment
    # The resource tokens are issued for. A custom cloud (the emulator) stands in for global
    # Graph, so its tokens name graph.microsoft.com whatever host serves them.
    resource: str = "https://graph.microsoft.com"

    @property
    def is_microsoft(self) -> bool:
        return self.name is not CloudName.CUSTOM

    @property
    def graph_host(self) -> str:
        return urlsplit(self.graph_url).netloc

    @property
    def app_only_scope(self) -> str:
        return f"{self.resource}/.default"


CLOUDS: dict[CloudName, Cloud] = {
    CloudName.GLOBAL: Cloud(
        CloudName.GLOBAL, "https://login.microsoftonline.com", "https://graph.microsoft.com"
    ),
    CloudName.US_GOV: Cloud(
        CloudName.US_GOV,
        "https://login.microsoftonline.us",
        "https://graph.microsoft.us",
        "https://graph.microsoft.us",
    ),
    CloudName.US_GOV_DOD: Cloud(
        CloudName.US_GOV_DOD,
        "https://login.microsoftonline.us",
        "https://dod-graph.microsoft.us",
        "https://dod-graph.microsoft.us",
    ),
    CloudName.CHINA: Cloud(
        CloudName.CHINA,
        "https://login.chinacloudapi.cn",
        "https://microsoftgraph.chinacloudapi.cn",
        "https://microsoftgraph.chinacloudapi.cn",
    ),
}


def _https_origin(url: str, what: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.netloc:
        raise ConfigurationError(
            f"The {what} {url!r} is not an https URL.",
            fix="Give an https origin such as https://login.example.test (MSAL refuses http).",
        )
    return f"https://{parts.netloc}"


def resolve_cloud(
    name: CloudName | str, *, authority_host: str | None = None, graph_url: str | None = None
) -> Cloud:
    """A known cloud (overrides allowed, e.g. to point one at a proxy), or a custom one."""
    cloud_name = CloudName(name)
    if cloud_name is CloudName.CUSTOM:
        if not authority_host or not graph_url:
            raise ConfigurationError(
                "A custom cloud needs both an authority host and a Graph URL.",
                fix="Set both, e.g. https://127.0.0.1:8700 for the emulator.",
            )
        return Cloud(
            cloud_name,
            _https_origin(authority_host, "authority host"),
            _https_origin(graph_url, "Graph URL"),
        )
    base = CLOUDS[cloud_name]
    return Cloud(
        cloud_name,
        _https_origin(authority_host, "authority host") if authority_host else base.authority_host,
        _https_origin(graph_url, "Graph URL") if graph_url else base.graph_url,
        base.resource,
    )


@dataclass(frozen=True)
class Permission:
    name: str
    kind: str  # "delegated" or "application"
    reason: str
    optional: bool = False


DELEGATED_PERMISSIONS: tuple[Permission, ...] = (
    Permission("Mail.Send", "delegated", "send the approval requests as the SMTP User"),
    Permission("Mail.ReadWrite", "delegated", "create drafts, read replies, move processed ones"),
    Permission("Mail.Send.Shared", "delegated", "send from a shared From Address (with Send As)"),
    Permission(
        "Mail.ReadWrite.Shared", "delegated", "read and move replies in a shared reply mailbox"
    ),
    Permission("User.Read", "delegated", "check which account signed in (oid, tenant)"),
    Permission("offline_access", "delegated", "keep working without a new sign-in (refresh)"),
    Permission(
        "MailboxSettings.ReadWrite",
        "delegated",
        "create the inbox rule that files replies into the reply folder",
        optional=True,
    ),
)

APPLICATION_PERMISSIONS: tuple[Permission, ...] = (
    Permission("Mail.Send", "application", "send from the From Address without a signed-in user"),
    Permission("Mail.ReadWrite", "application", "create drafts, read and move replies"),
)

# The scopes MSAL is asked for in delegated mode. offline_access/openid/profile are reserved:
# MSAL adds them itself and refuses them when passed.
DELEGATED_SCOPES: tuple[str, ...] = (
    "Mail.Send",
    "Mail.ReadWrite",
    "Mail.Send.Shared",
    "Mail.ReadWrite.Shared",
    "User.Read",
)


def delegated_scopes(cloud: Cloud) -> list[str]:
    """Short names resolve to graph.microsoft.com, so national clouds get qualified ones."""
    if cloud.name in (CloudName.GLOBAL, CloudName.CUSTOM):
        return list(DELEGATED_SCOPES)
    return [f"{cloud.resource}/{scope}" for scope in DELEGATED_SCOPES]


def permissions_for(mode: Mode | str) -> tuple[Permission, ...]:
    return DELEGATED_PERMISSIONS if Mode(mode) is Mode.DELEGATED else APPLICATION_PERMISSIONS
