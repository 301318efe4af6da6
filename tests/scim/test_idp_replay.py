"""Microsoft Entra ID's and Okta's documented request sequences, replayed in order over the app
(tests/scim/idp_requests.py holds the requests and what each provider relies on in the answer)."""

import re
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from roster.store.schema import audit_events
from tests.scim.idp_requests import PRESENT, SEQUENCES, Path, Step

_NAME = re.compile(r"\{(\w+)\}")
_MISSING = object()


def _fill(data: Any, kept: dict[str, str]) -> Any:
    """`data` with each `{name}` an earlier step kept replaced by its value."""
    if isinstance(data, str):
        return _NAME.sub(lambda m: kept.get(m.group(1), m.group(0)), data)
    if isinstance(data, list):
        return [_fill(item, kept) for item in data]
    if isinstance(data, dict):
        return {_fill(k, kept): _fill(v, kept) for k, v in data.items()}
    return data


def _at(answer: Any, path: Path) -> Any:
    keys = path if isinstance(path, tuple) else tuple(path.split("."))
    for key in keys:
        if isinstance(answer, list) and str(key).isdigit() and int(key) < len(answer):
            answer = answer[int(key)]
        elif isinstance(answer, dict) and key in answer:
            answer = answer[key]
        else:
            return _MISSING
    return answer


def _passwords(body: Any) -> set[str]:
    """Every password a request body carries (Okta sends a placeholder on create)."""
    if isinstance(body, dict):
        found = {v for k, v in body.items() if k.lower() == "password" and isinstance(v, str)}
        return found.union(*(_passwords(v) for v in body.values()))
    return set()


async def replay(client: httpx.AsyncClient, steps: list[Step]) -> set[str]:
    """Send each step's request in order, asserting what the provider relies on in each answer;
    the passwords the requests carried."""
    kept: dict[str, str] = {}
    passwords: set[str] = set()
    for step in steps:
        body = _fill(step.body, kept)
        passwords |= _passwords(body)
        response = await client.request(
            step.method,
            _fill(step.path, kept),
            json=body,
            headers=_fill(step.headers, kept) or None,
        )
        where = f"{step.name} ({step.method} {step.path})"
        allowed = step.status if isinstance(step.status, tuple) else (step.status,)
        assert response.status_code in allowed, f"{where}: {response.status_code} {response.text}"
        for secret in passwords:
            assert secret not in response.text, f"{where}: the password is echoed"
        answer = response.json() if response.content else None
        if answer is not None:
            assert response.headers["content-type"].startswith("application/scim+json"), where
        for path, wanted in step.expect.items():
            found = _at(answer, path)
            if wanted is PRESENT:
                assert found is not _MISSING and found not in (None, ""), f"{where}: no {path}"
            else:
                assert found == _fill(wanted, kept), f"{where}: {path} is {found!r}"
        for path in step.absent:
            assert _at(answer, path) is _MISSING, f"{where}: {path} is in the answer"
        for name, path in step.keep.items():
            value = _at(answer, path)
            assert isinstance(value, str), f"{where}: no {path} to keep"
            kept[name] = value
    return passwords


@pytest.mark.parametrize("sequence", list(SEQUENCES))
async def test_documented_sequence(scim, engine, sequence):
    passwords = await replay(scim, SEQUENCES[sequence])
    if passwords:  # kept nowhere: not in the audit log either
        async with engine.connect() as conn:
            events = (
                await conn.execute(
                    sa.select(audit_events.c.before, audit_events.c.after).where(
                        audit_events.c.tenant_id == scim.tenant.id
                    )
                )
            ).all()
        assert events
        for secret in passwords:
            assert all(secret not in repr(tuple(e)) for e in events)
