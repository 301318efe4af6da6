"""Checking an app token on every request: `sessions.LIVE`, the one definition of a live
session, run by DirectReads (see store.prepared). It asks the database each time, so a
revocation by any process takes effect on the very next request."""

from roster.store.clock import now
from roster.store.prepared import DirectReads, prepared
from roster.store.sessions import LIVE, Session, parse


class TokenCheck:
    def __init__(self, reads: DirectReads) -> None:
        self._reads = reads

    async def session(self, presented: str, kind: str) -> Session | None:
        """The live session of a present, active user this token is; None for every kind of
        wrong (as `sessions.find`)."""
        parsed = parse(presented)
        if parsed is None:
            return None
        tenant_id, hashed = parsed
        values = {"t": tenant_id, "h": hashed, "k": kind, "now": now()}
        row = await prepared(LIVE).first(self._reads, values)
        if row is None:
            return None
        return Session(
            row["id"], tenant_id, row["user_id"], kind, row["created_at"], row["expires_at"]
        )
