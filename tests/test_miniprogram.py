"""The companion mini program's jest suite (miniprogram-simulate), run against a real server.

The page tests render the login page and stub wx.*; tests/server/ exercises utils/api.js over
HTTP against this sandbox server. ./scripts/test installs the npm packages first.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from aiohttp.test_utils import TestServer

from tests.helpers import api_error_codes

MINIPROGRAM = Path(__file__).resolve().parent.parent / "miniprogram"


async def test_the_jest_suite_passes_against_a_running_server(sandbox_server: TestServer) -> None:
    assert (MINIPROGRAM / "node_modules" / "miniprogram-simulate").is_dir(), (
        "npm packages missing: ./scripts/test runs `npm ci` in miniprogram/"
    )
    env = {**os.environ, "WXLOGIN_TEST_SERVER": str(sandbox_server.make_url("")).rstrip("/"),
           "CI": "true"}
    process = await asyncio.create_subprocess_exec(
        "npx", "jest", "--ci", "--colors=false", "--testMatch", "**/tests/**/*.test.js",
        "**/tests/server/*.server.js", cwd=MINIPROGRAM, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 180)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report
    assert "Tests:" in report and "failed" not in report.split("Tests:")[1].splitlines()[0]
    assert "api.server.js" in report  # the server half ran too


async def test_the_mini_program_knows_every_error_the_server_can_answer() -> None:
    server_codes = api_error_codes()
    process = await asyncio.create_subprocess_exec(
        "node", "-e", "console.log(JSON.stringify(Object.keys(require('./utils/messages').TABLE)))",
        cwd=MINIPROGRAM, stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    known = set(json.loads(output))
    # The browser's, and OpenID Connect's (for relying parties), are not the phone's.
    phone_side = server_codes - {"not_logged_in", "login_already_used", "not_found",
                                 "invalid_client", "not_in_group", "not_owner",
                                 "invitation_invalid", "link_unavailable",
                                 "bad_signature", "confirm_link_invalid"}
    assert not phone_side - known, f"miniprogram/utils/messages.js lacks {phone_side - known}"
