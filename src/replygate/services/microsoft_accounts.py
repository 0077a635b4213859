"""Which local account a Microsoft sign-in is: Entra authenticates, replygate authorises.

The account Microsoft signed in is matched to the one active local user whose email is
its ``preferred_username`` (else its ``email`` claim), case-insensitively; that user's role
applies. Nobody is created here: an unknown account is refused with the command an admin
runs to create it. Only a successful sign-in is written (to the audit log).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from replygate.errors import InvalidInput, UserError
from replygate.services.account_ports import AccountsUnitOfWork, User
from replygate.services.accounts import normalise_username

METHOD = "microsoft"


class SignInRefused(UserError):
    """Microsoft signed someone in, but replygate does not let them in."""


@dataclass(frozen=True)
class MicrosoftIdentity:
    username: str  # preferred_username
    email: str
    oid: str
    tid: str

    @property
    def addresses(self) -> list[str]:
        """Where to look, in order: the sign-in name first, the email claim second."""
        return list(dict.fromkeys(a.strip() for a in (self.username, self.email) if a.strip()))


def _suggested_username(address: str) -> str:
    try:
        return normalise_username(address.split("@", 1)[0])
    except InvalidInput:
        return "NAME"


def _refusal_for_unknown(identity: MicrosoftIdentity) -> SignInRefused:
    shown = identity.addresses[0] if identity.addresses else "(no name)"
    if not identity.addresses:
        return SignInRefused(
            "Microsoft did not say which account signed in (no preferred_username or email).",
            fix="Sign in with your replygate username and password.",
        )
    return SignInRefused(
        f"No replygate account for {shown}.",
        fix=f"Ask an admin: replygate users create {_suggested_username(shown)} --email "
        f"{shown} --role viewer (or --role requester, or --admin); then sign in with "
        "Microsoft again.",
    )


def _matching(users: Sequence[User], address: str) -> list[User]:
    wanted = address.casefold()
    return [user for user in users if user.email and user.email.casefold() == wanted]


def account_for(uow: AccountsUnitOfWork, identity: MicrosoftIdentity) -> User:
    """The active local user this Microsoft account is, recorded as signed in; or refused."""
    with uow:
        # Console accounts are few; matching in Python keeps casefold() for every script.
        users = uow.users.list()
        found: list[User] = []
        for address in identity.addresses:
            found = _matching(users, address)
            if found:
                break
        if not found:
            raise _refusal_for_unknown(identity)
        active = [user for user in found if not user.disabled]
        if not active:
            raise SignInRefused(
                f"The replygate account {found[0].username} ({found[0].email}) is disabled.",
                fix="Ask an admin to enable it: replygate users enable " + found[0].username,
            )
        if len(active) > 1:
            names = ", ".join(user.username for user in active)
            raise SignInRefused(
                f"Several replygate accounts have the email {active[0].email}: {names}.",
                fix="Ask an admin to disable all but one of them "
                "(replygate users disable NAME); meanwhile sign in with a password.",
            )
        user = active[0]
        uow.audit.record(
            user.username,
            "auth.sign_in",
            user.username,
            {
                "method": METHOD,
                "account": identity.username or identity.email,
                "oid": identity.oid,
                "tid": identity.tid,
            },
        )
        uow.commit()
    return user
