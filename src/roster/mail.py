"""Sending mail: through SMTP when ROSTER_SMTP_URL is set, otherwise into an outbox file under
the data directory (`roster mail outbox` shows it), so sign-in works on a laptop."""

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib

from roster.files import private_dir, private_opener
from roster.settings import Settings
from roster.store.clock import now

log = logging.getLogger("roster.mail")
_outbox_lock = asyncio.Lock()


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str


def outbox_path(settings: Settings) -> Path:
    return settings.data_dir / "mail" / "outbox.jsonl"


async def send(settings: Settings, message: Message) -> None:
    if not settings.smtp_url:
        await _to_outbox(settings, message)
        return
    url = urlsplit(settings.smtp_url)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = settings.mail_from, message.to, message.subject
    mail.set_content(message.body)
    implicit_tls = url.scheme == "smtps"
    await aiosmtplib.send(
        mail,
        hostname=url.hostname or "localhost",
        port=url.port or (465 if implicit_tls else 587),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=implicit_tls,
        timeout=30,
    )


async def _to_outbox(settings: Settings, message: Message) -> None:
    path = outbox_path(settings)
    line = json.dumps({"at": now().isoformat(), **asdict(message)}, ensure_ascii=False)
    async with _outbox_lock:
        await asyncio.to_thread(_append, path, line)


def _append(path: Path, line: str) -> None:
    private_dir(path.parent)  # live sign-in codes: the server's account's alone
    with open(path, "a", encoding="utf-8", opener=private_opener) as out:
        out.write(line + "\n")


def outbox(settings: Settings) -> list[dict[str, Any]]:
    path = outbox_path(settings)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
