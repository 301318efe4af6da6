"""What `roster serve` logs, and the id every request carries: in its answer's X-Request-ID and
in each line it logs (ROSTER_LOG_FORMAT=json: one JSON object a line)."""

import json
import logging
import re
import subprocess
import sys
import time

import httpx
import pytest

from roster.logs import ORGANIZATION, REQUEST_ID, configure
from roster.settings import Settings
from roster.web.app import create_app
from tests.conftest import free_port


async def answer(engine, **headers):
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
        return await client.get("/healthz", headers=headers)


async def test_every_answer_names_its_request(engine):
    first, second = await answer(engine), await answer(engine)
    assert re.fullmatch(r"[0-9a-f]{16}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    # A proxy's or client's own id is kept when it is a plain token, so both logs line up.
    assert (await answer(engine, **{"X-Request-ID": "lb-7f3a.42"})).headers["x-request-id"] == (
        "lb-7f3a.42"
    )
    for odd in ("two words", "x" * 65, "<script>"):
        kept = (await answer(engine, **{"X-Request-ID": odd})).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", kept), odd


def test_a_json_log_line_names_the_request_and_the_organization(capsys):
    configure(Settings(log_format="json", log_level="INFO"))
    try:
        REQUEST_ID.set("req-1")
        ORGANIZATION.set("0b7e0a5e-9d2c-4f0e-8a55-1f3f3e1f0c11")
        logging.getLogger("roster.test").warning("a %s happened", "thing")
        REQUEST_ID.set(None)
        ORGANIZATION.set(None)
        logging.getLogger("roster.test").info("outside any request")
    finally:
        logging.basicConfig(force=True)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["event"] == "a thing happened" and lines[0]["level"] == "WARNING"
    assert lines[0]["request_id"] == "req-1"
    assert lines[0]["organization"] == "0b7e0a5e-9d2c-4f0e-8a55-1f3f3e1f0c11"
    assert lines[0]["logger"] == "roster.test" and lines[0]["time"].endswith("+00:00")
    assert lines[1]["request_id"] is None and lines[1]["organization"] is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_roster_serve_logs_json_lines_with_the_request_id(cli_env, tmp_path):
    port, sftp_port = free_port(), free_port()
    env = {**cli_env, "ROSTER_HTTP_PORT": str(port), "ROSTER_SFTP_PORT": str(sftp_port)}
    env |= {"ROSTER_LOG_FORMAT": "json", "ROSTER_DATA_DIR": str(tmp_path / "data")}
    server = subprocess.Popen(
        [sys.executable, "-m", "roster", "serve"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                refused = httpx.get(
                    f"http://127.0.0.1:{port}/scim/v2/Users",
                    headers={"Authorization": "Bearer nope", "X-Request-ID": "trace-42"},
                    timeout=2,
                )
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert refused.status_code == 401 and refused.headers["x-request-id"] == "trace-42"
    finally:
        server.terminate()
        said = server.communicate(timeout=30)[1]
    lines = [json.loads(line) for line in said.splitlines() if line.startswith("{")]
    (refusal,) = [line for line in lines if "no valid token" in line["event"]]
    assert refusal["request_id"] == "trace-42" and refusal["level"] == "INFO"
    assert any(line["event"].startswith("HTTP on http://") for line in lines)
