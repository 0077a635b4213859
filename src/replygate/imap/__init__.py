"""Reading replies over IMAP (TLS or STARTTLS; LOGIN/PLAIN or XOAUTH2)."""

from replygate.imap.errors import CursorExpired, FolderNotFound, ImapConfigurationError
from replygate.imap.mailbox import ImapReplyMailbox
from replygate.imap.session import ImapSettings

__all__ = [
    "CursorExpired",
    "FolderNotFound",
    "ImapConfigurationError",
    "ImapReplyMailbox",
    "ImapSettings",
]
