"""Observability: Prometheus metrics at /metrics, JSON logs with a request id and nothing
personal, and `wxlogin doctor`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import APPID, SECRET, FakeWeChat, Fault
from tests.helpers import new_scene, poll, push, step
from wxlogin import logs

ROOT = Path(__file__).resolve().parent.parent


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_follow_the_funnel_wechat_and_the_waiting_polls(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    server = await make_server()
    b1, b2, phone = await browser(server), await browser(server), await browser(server)
    scene = await new_scene(b1)
    assert await new_scene(b1) == scene  # reused
    assert (await b1.get(f"/api/scenes/{scene}/code")).status == 200
    waiting = asyncio.create_task(poll(b1, scene, wait=10, since="pending"))
    await asyncio.sleep(0.2)
    text = await (await b2.get("/metrics")).text()
    assert samples(text)[("wxlogin_waiting_polls", ())] == 1
    assert (await step(phone, scene, "scan", fw.mint("p"))).status == 200
    await waiting
    assert (await push(phone, scene, fw.mint("p"))).status == 200
    assert (await poll(b1, scene, since="scanned"))[1]["status"] == "confirmed"
    other = await new_scene(b2)
    assert (await step(phone, other, "scan", fw.mint("q"))).status == 200
    assert (await step(phone, other, "deny", fw.mint("q"))).status == 200
    fw.fail("jscode2session", Fault(errcode=40029))
    await push(phone, await new_scene(await browser(server)), fw.mint())

    response = await b2.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(await response.text())

    def funnel(step: str) -> float:
        return found[("wxlogin_logins_total", (("step", step),))]

    assert [funnel(s) for s in ("created", "reused", "drawn", "scanned", "confirmed", "denied",
                                "logged_in", "expired")] == [3, 1, 1, 2, 1, 1, 1, 0]
    calls = {labels: value for (name, labels), value in found.items()
             if name == "wxlogin_wechat_calls_total"}
    assert calls[(("api", "jscode2session"), ("outcome", "ok"))] == 4
    assert calls[(("api", "jscode2session"), ("outcome", "code_rejected"))] == 1
    assert calls[(("api", "getwxacodeunlimit"), ("outcome", "ok"))] == 1
    assert calls[(("api", "stable_token"), ("outcome", "ok"))] == 1
    assert found[("wxlogin_wechat_call_seconds_count", (("api", "jscode2session"),))] == 5
    assert found[("wxlogin_waiting_polls", ())] == 0
    assert found[("wxlogin_db_pool_connections", ())] >= 1
    assert 0 <= found[("wxlogin_db_pool_connections_in_use", ())] <= 10
    assert found[("wxlogin_http_requests_total", (
        ("method", "POST"), ("route", "/api/scenes"), ("status", "201")))] == 4
    assert found[("wxlogin_http_requests_total", (
        ("method", "POST"), ("route", "/api/pushCode"), ("status", "400")))] == 1


async def test_every_answer_has_a_request_id_and_logs_carry_it(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await make_server()
    b1 = await browser(server)
    fw.fail("getwxacodeunlimit", Fault(errcode=41030))
    scene = await new_scene(b1)
    with caplog.at_level(logging.INFO):
        failed = await b1.get(f"/api/scenes/{scene}/code")
    assert failed.status == 502
    rid = failed.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", rid)
    explained = [r for r in caplog.records if "41030" in r.getMessage()]
    assert explained and getattr(explained[0], "request_id", None) == rid
    # A proxy's id is kept; a hostile one is replaced.
    kept = await b1.get("/healthz", headers={"X-Request-Id": "nginx-0123456789abcdef"})
    assert kept.headers["X-Request-Id"] == "nginx-0123456789abcdef"
    hostile = await b1.get("/healthz", headers={"X-Request-Id": "x\u00e9<script>"})
    assert re.fullmatch(r"[0-9a-f]{16}", hostile.headers["X-Request-Id"])
    redirect = await b1.get("/account", allow_redirects=False)
    assert redirect.status == 302 and redirect.headers["X-Request-Id"]


def test_json_lines_hold_the_fields_and_no_query_or_address() -> None:
    record = logging.LogRecord("wxlogin.access", logging.INFO, __file__, 1,
                               "%s %s %s %.1f ms", ("GET", "/api/scenes/{scene}", 200, 3.2),
                               None)
    record.__dict__.update(method="GET", route="/api/scenes/{scene}", status=200, ms=3.2,
                           request_id="abc123abc123")
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["message"] == "GET /api/scenes/{scene} 200 3.2 ms"
    assert {k: entry[k] for k in ("level", "logger", "route", "status", "ms", "request_id")} == {
        "level": "info", "logger": "wxlogin.access", "route": "/api/scenes/{scene}",
        "status": 200, "ms": 3.2, "request_id": "abc123abc123"}


async def run_wxlogin(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wxlogin", *args, cwd=ROOT, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, output.decode()


async def test_a_served_process_logs_json_with_request_ids(
    pg_url: str, fw: FakeWeChat, tmp_path: Path
) -> None:
    from tests.conftest import free_port
    from tests.helpers import until_healthy
    from tests.test_processes import spawn

    port, log = free_port(), tmp_path / "serve.log"
    process = spawn({"WXLOGIN_DATABASE_URL": pg_url, "WXLOGIN_PORT": str(port),
                     "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
                     "WXLOGIN_WECHAT_API_BASE": fw.url, "WXLOGIN_DATA_DIR": str(tmp_path),
                     "WXLOGIN_LOG_FORMAT": "json"}, log)
    try:
        await until_healthy(port, process, log)
    finally:
        process.terminate()
        process.wait(15)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [e for e in lines if e["logger"] == "wxlogin.access"]
    assert access and access[-1]["route"] == "/healthz" and access[-1]["status"] == 200
    assert re.fullmatch(r"[0-9a-f]{16}", access[-1]["request_id"])
    assert "127.0.0.1" not in json.dumps(access)  # no client address


async def test_doctor_says_all_is_well(pg_url: str, fw: FakeWeChat, tmp_path: Path) -> None:
    env = {"WXLOGIN_DATABASE_URL": pg_url, "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
           "WXLOGIN_WECHAT_API_BASE": fw.url, "WXLOGIN_DATA_DIR": str(tmp_path)}
    code, output = await run_wxlogin("doctor", env=env)
    assert code == 0, output
    assert "ok   database: PostgreSQL" in output and "migrations up to date" in output
    assert f"ok   {APPID} (primary, draws the codes) credentials" in output
    assert f"ok   {APPID} (primary, draws the codes) code: drew a" in output
    assert SECRET not in output


@pytest.mark.parametrize(("endpoint", "errcode", "explanation"), [
    ("getwxacodeunlimit", 41030, "it is not published"),
    ("stable_token", 40125, "check WXLOGIN_SECRET"),
    ("stable_token", 40164, "IP whitelist"),
])
async def test_doctor_explains_what_to_change(
    pg_url: str, fw: FakeWeChat, tmp_path: Path, endpoint: str, errcode: int, explanation: str
) -> None:
    fw.fail(endpoint, Fault(errcode=errcode))
    env = {"WXLOGIN_DATABASE_URL": pg_url, "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
           "WXLOGIN_WECHAT_API_BASE": fw.url, "WXLOGIN_DATA_DIR": str(tmp_path)}
    code, output = await run_wxlogin("doctor", env=env)
    assert code == 1, output
    assert f"errcode {errcode}" in output and explanation in output, output
    assert "something above needs fixing" in output


async def test_doctor_checks_phone_numbers_and_links(
    pg_url: str, fw: FakeWeChat, tmp_path: Path
) -> None:
    env = {"WXLOGIN_DATABASE_URL": pg_url, "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
           "WXLOGIN_WECHAT_API_BASE": fw.url, "WXLOGIN_DATA_DIR": str(tmp_path),
           "WXLOGIN_PHONE": "optional"}
    code, output = await run_wxlogin("doctor", env=env)
    assert code == 0, output
    assert "phone numbers: getuserphonenumber is open to this mini program" in output
    assert "phone-browser link: made a url_link (https://…)" in output
    fw.fail("getuserphonenumber", Fault(errcode=48001))  # an individual mini program
    code, output = await run_wxlogin("doctor", env=env)
    assert code == 1 and "errcode 48001" in output and "non-individual" in output, output
    fw.fail("generate_urllink", Fault(errcode=40002))
    code, output = await run_wxlogin("doctor", env={**env, "WXLOGIN_PHONE": "off"})
    assert code == 1 and "errcode 40002: 40002 an individual mini program" in output, output
    assert "phone numbers" not in output  # not asked for when off


async def test_doctor_without_a_database(tmp_path: Path) -> None:
    env = {"WXLOGIN_DATABASE_URL": "postgresql://nobody:pw@127.0.0.1:9/none",
           "WXLOGIN_DATA_DIR": str(tmp_path)}
    code, output = await run_wxlogin("doctor", env=env)
    assert code == 1, output
    assert "FAIL database: cannot connect" in output and "WXLOGIN_DATABASE_URL" in output
