"""Sending through SMTP (STARTTLS or implicit TLS; AUTH PLAIN/LOGIN or XOAUTH2)."""

from replygate.smtp.credentials import Basic, Credentials, NoAuth, XOAuth2
from replygate.smtp.sender import Pacing, SmtpMailSender, SmtpSettings

__all__ = [
    "Basic",
    "Credentials",
    "NoAuth",
    "Pacing",
    "SmtpMailSender",
    "SmtpSettings",
    "XOAuth2",
]
