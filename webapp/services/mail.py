"""E-mail (SPEC §13): sent only when `SMTP_URL` is set, with the standard library's SMTP client.

    settings = mail.settings()                 # None without SMTP_URL (e-mail is off)
    message = mail.compose("ana@example.com", "Import #3 failed", "email/notification.txt", n=…)
    mail.send(settings, [message])

`SMTP_URL` is `smtp://user:pass@host:port` (plain, or `?starttls=true`), or `smtps://…` for
implicit TLS. Every e-mail is rendered from one plain-text template; its HTML part is the same
text as simple markup (`text_to_html`), so the two never say different things.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
import smtplib
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app, has_app_context, render_template

log = logging.getLogger(__name__)

TIMEOUT = 15  # seconds for the connection and each command
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")
_URL = re.compile(r"https?://[^\s<>\"]+")


class SmtpUrlInvalid(ValueError):
    pass


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool
    sender: str

    def __repr__(self) -> str:  # never the password, in a log or a traceback
        return f"SmtpSettings(host={self.host!r}, port={self.port}, tls={self.implicit_tls or self.starttls})"


def parse_url(url: str, sender: str = "") -> SmtpSettings:
    """`smtp://user:pass@host:port[?starttls=true]` or `smtps://…`; SmtpUrlInvalid says what is
    wrong (without the password)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise SmtpUrlInvalid("SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise SmtpUrlInvalid("SMTP_URL names no host")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise SmtpUrlInvalid("SMTP_URL has an invalid port") from None
    query = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    starttls = query.get("starttls", "false") in ("1", "true", "yes", "on")
    return SmtpSettings(
        host=parts.hostname, port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=parts.scheme == "smtps", starttls=starttls and parts.scheme == "smtp",
        sender=sender or f"Asset Inventory <inventory@{parts.hostname}>",
    )


def settings() -> SmtpSettings | None:
    """The app's SMTP settings, or None when e-mail is off (no `SMTP_URL`, or no app)."""
    if not has_app_context():
        return None
    url = current_app.config.get("SMTP_URL")
    if not url:
        return None
    try:
        return parse_url(url, current_app.config.get("SMTP_FROM") or "")
    except SmtpUrlInvalid as exc:  # said once per use in the log; e-mail stays off meanwhile
        log.error("E-mail is off: %s", exc)
        return None


def absolute(path: str | None) -> str | None:
    """A link for an e-mail: the app's `APP_URL` + the path (the path alone without it)."""
    if not path:
        return None
    base = (current_app.config.get("APP_URL") or "").rstrip("/") if has_app_context() else ""
    return f"{base}{path}" if base else path


def text_to_html(text: str) -> str:
    """The text of an e-mail as simple HTML: paragraphs at blank lines, `- ` lines as a list,
    web addresses as links; everything escaped."""
    blocks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = paragraph.splitlines()
        if lines and all(line.startswith("- ") for line in lines):
            items = "".join(f"<li>{_inline(line[2:])}</li>" for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        else:
            blocks.append("<p>" + "<br>\n".join(_inline(line) for line in lines) + "</p>")
    body = "\n".join(blocks)
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8"></head>\n'
            f'<body style="font-family: sans-serif; line-height: 1.4">\n{body}\n</body></html>\n')


def _inline(line: str) -> str:
    out, last = [], 0
    for match in _URL.finditer(line):
        out.append(html.escape(line[last:match.start()]))
        url = html.escape(match.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(html.escape(line[last:]))
    return "".join(out)


def compose(to: str, subject: str, template: str, *, sender: str, **context: object) -> EmailMessage:
    """One e-mail: the template's text, and the same as HTML."""
    text = render_template(template, **context).strip() + "\n"
    message = EmailMessage()
    message["Subject"] = _HEADER_UNSAFE.sub(" ", subject).strip()[:250]
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="asset-inventory")
    message.set_content(text)
    message.add_alternative(text_to_html(text), subtype="html")
    return message


@contextlib.contextmanager
def connect(config: SmtpSettings) -> Iterator[smtplib.SMTP]:
    """One SMTP connection, signed in, closed afterwards (`client.send_message(message)`).
    Raises smtplib.SMTPException or OSError when the server cannot be reached or refuses."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if config.implicit_tls:
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT)
    with client:
        if config.starttls:
            client.starttls(context=context)
        if config.username:
            client.login(config.username, config.password or "")
        yield client


def send(config: SmtpSettings, messages: Iterable[EmailMessage]) -> int:
    """Send the messages over one connection; the number sent. Raises on the first failure."""
    messages = list(messages)
    if not messages:
        return 0
    with connect(config) as client:
        for message in messages:
            client.send_message(message)
    return len(messages)
