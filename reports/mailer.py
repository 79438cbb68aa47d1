"""E-mailing the board report: an HTML message with a plain-text alternative, queued on disk
and sent over SMTP (STARTTLS or TLS). A message that cannot be sent stays queued and goes on
the next attempt; nothing is lost and a month's report is queued once."""

from __future__ import annotations

import contextlib
import email.policy
import email.utils
import smtplib
import ssl
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from warpagent.config import EmailSettings
from warpagent.files import write_atomically

# Headers unfolded up to RFC 5322's 998 characters: a long council name must not fold the
# Subject (some clients show a folded first line empty); the body keeps its own encoding.
_WIRE = email.policy.SMTP.clone(max_line_length=998)
_READ = email.policy.default.clone(max_line_length=998)


def compose(settings: EmailSettings, *, organisation: str, month: str, html: str, text: str) -> EmailMessage:
    """The board report: plain text for any mail client, HTML as the preferred alternative."""
    message = compose_text(settings, subject=settings.subject.format(organisation=organisation, month=month),
                           text=text)
    message.add_alternative(html, subtype="html")
    return message


def compose_text(settings: EmailSettings, *, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.to)
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain=settings.sender.rsplit("@", 1)[-1])
    message.set_content(text)
    return message


def queue(settings: EmailSettings, name: str, message: EmailMessage) -> Path:
    """Keep the message on disk (replacing an unsent one of the same name) before any attempt to send."""
    settings.outbox.mkdir(parents=True, exist_ok=True)
    return write_atomically(settings.outbox / f"{name}.eml", message.as_bytes(policy=_WIRE))


def pending(settings: EmailSettings) -> list[Path]:
    return sorted(settings.outbox.glob("*.eml")) if settings.outbox.exists() else []


def send_pending(settings: EmailSettings, password: str | None) -> tuple[int, list[str]]:
    """Send every queued message; return (sent, problems). Sent messages leave the queue."""
    queued = pending(settings)
    if not queued:
        return 0, []
    try:
        server = _connect(settings, password)
    except (OSError, smtplib.SMTPException) as exc:
        return 0, [f"SMTP {settings.smtp_host}:{settings.smtp_port}: {_reason(exc)}; {len(queued)} report(s) kept "
                   f"in {settings.outbox} for the next attempt"]
    sent, problems = 0, []
    try:
        for path in queued:
            message = BytesParser(policy=_READ).parsebytes(path.read_bytes())
            try:
                server.send_message(message)
            except smtplib.SMTPException as exc:
                problems.append(f"{path.name}: {_reason(exc)}; kept for the next attempt")
                continue
            path.unlink()
            sent += 1
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):  # the messages went; a rude goodbye is fine
            server.quit()
    return sent, problems


def _connect(settings: EmailSettings, password: str | None) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=str(settings.ca_bundle) if settings.ca_bundle else None)
    server: smtplib.SMTP
    if settings.security == "tls":
        server = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s, context=context)
    else:
        server = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s)
        if settings.security == "starttls":
            server.starttls(context=context)
    if settings.username:
        server.login(settings.username, password or "")
    return server


def _reason(exc: BaseException) -> str:
    # smtplib errors can echo the server's reply; never anything of ours like the password
    return f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:160] if str(exc) else 'no detail'}"
