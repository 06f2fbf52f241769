"""Notification email over SMTP with the standard library (smtplib, email.message), run on a
worker thread: STARTTLS, TLS or plain, with a login when one is set. A refusal or an outage is
an SmtpFailed naming it; the caller retries later."""

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage


class SmtpFailed(Exception):
    pass


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: str  # starttls | tls | none
    user: str | None
    password: str | None
    sender: str
    timeout: float


def message(server: SmtpServer, to: str, subject: str, text: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = server.sender, to, subject
    mail.set_content(text)
    return mail


def send(server: SmtpServer, mail: EmailMessage) -> None:
    """Hand the message to the server (blocking: call it from a thread)."""
    try:
        if server.tls == "tls":
            context = ssl.create_default_context()
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                server.host, server.port, timeout=server.timeout, context=context
            )
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        with client:
            if server.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if server.user:
                client.login(server.user, server.password or "")
            client.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:
        raise SmtpFailed(f"{type(exc).__name__}: {exc}"[:500]) from exc
