"""The app's sign-in codes, issued and mailed off the request path. `/app/v1/sign-in/code`
only queues the request and answers, the same and as quickly whether or not the address belongs
to anyone; who gets a code, its row and its mail come after, here. One bounded queue per process,
served by a few workers that exist only while there is work."""

import asyncio
import logging
from contextvars import Context

from sqlalchemy.ext.asyncio import AsyncEngine

from roster import mail
from roster.settings import Settings
from roster.store import sign_in_codes, sso
from roster.store.db import Unavailable, writing

log = logging.getLogger("roster.app")
QUEUE = 1000  # requests waiting; beyond it a request is dropped (and logged)
WORKERS = 4  # requests served at once (each one's database work, then its mail)


class CodeMail:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine, self._settings = engine, settings
        self._queue: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue(QUEUE)
        self._workers: set[asyncio.Task[None]] = set()

    def ask(self, email: str, organization: str | None) -> None:
        """Send a code to this address's users (in one organization, or in each) soon."""
        try:
            self._queue.put_nowait((email, organization))
        except asyncio.QueueFull:
            log.warning("a sign-in code request was dropped: %d are waiting", QUEUE)
            return
        if len(self._workers) < WORKERS:
            # A context of its own: it serves every request, not the one that started it.
            worker = asyncio.get_running_loop().create_task(self._work(), context=Context())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    async def _work(self) -> None:
        while True:
            try:
                email, organization = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                # Gone from the set at once: a request queued next starts a worker of its own.
                if (current := asyncio.current_task()) is not None:
                    self._workers.discard(current)
                return
            try:
                await self._send(email, organization)
            except Unavailable as error:  # busy or unreachable: the user asks again
                log.warning("a sign-in code was not issued: %s", error)
            except Exception:  # unforeseen: the user asks again, the log says why in full
                log.exception("issuing a sign-in code failed")
            finally:
                self._queue.task_done()

    async def _send(self, email: str, organization: str | None) -> None:
        messages = []
        async with writing(self._engine) as conn:
            if await sign_in_codes.sent_recently(conn, email) < sign_in_codes.PER_ADDRESS:
                for recipient in await sign_in_codes.recipients(conn, email, organization):
                    # An organization that signs in through its provider alone mails no codes.
                    if not await sso.codes_allowed(conn, recipient.tenant_id):
                        continue
                    code = await sign_in_codes.issue(conn, recipient)
                    messages.append(_message(recipient, code))
        for message in messages:
            try:
                await mail.send(self._settings, message)
            except Exception:  # SMTP fails in many ways; the user asks again, the log says why
                log.exception("sending a sign-in code failed")

    async def drained(self) -> None:
        """Wait until every request queued so far has been served."""
        await self._queue.join()

    async def close(self, timeout: float = 10.0) -> None:
        """Serve what is queued (for at most `timeout` seconds), then stop."""
        try:
            async with asyncio.timeout(timeout):
                await self.drained()
        except TimeoutError:
            log.warning("%d sign-in code requests left unserved", self._queue.qsize())
        workers = list(self._workers)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


def _message(recipient: sign_in_codes.Recipient, code: str) -> mail.Message:
    minutes = int(sign_in_codes.LIFETIME.total_seconds() // 60)
    return mail.Message(
        recipient.email,
        f"Your sign-in code: {code}",
        f"Your code to sign in to the workplace app ({recipient.organization}) is {code}.\n"
        f"It works once, for {minutes} minutes. If you did not ask for it, ignore this mail.\n",
    )
