"""The entry point: the benchmark, or with --generator one of its load generators."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from .bench import Bench
from .common import ROOT
from .options import Plan, parse
from .procfs import loadavg
from .sections import JOBS
from .tables import say


def generator_main() -> None:
    job = json.loads(sys.stdin.readline())
    asyncio.run(JOBS[job["kind"]](job))


async def main_async(args: argparse.Namespace, plan: Plan) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    work = Path(tempfile.mkdtemp(prefix="wxbench-"))
    try:
        await Bench(args, plan, work).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    if sys.argv[1:2] == ["--generator"]:
        generator_main()
        return
    sys.path.insert(0, str(ROOT))
    logging.getLogger("wxlogin.postgres").setLevel(logging.ERROR)  # its o+x notice as root
    args, plan = parse(sys.argv[1:])
    say("# wxacode-login load benchmark\n")
    say(f"`$ {shlex.join(['./scripts/bench', *sys.argv[1:]])}`")
    say(f"\n{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, load average at start {loadavg()} (other work on "
        "this machine, such as a test run, makes every figure noisier).")
    try:
        asyncio.run(main_async(args, plan))
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", flush=True)
        raise SystemExit(130) from None
