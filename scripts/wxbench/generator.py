"""The load generators: separate processes (this package run again with --generator), each given
its job as one JSON line on stdin and answering with JSON events on stdout, one a line. Both
sides are here: what a job uses to talk (`emit`, `command`, `label`), and the orchestrator's
handle on the process (`Generator`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from .client import Failed


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def command() -> dict[str, Any]:
    line = await asyncio.to_thread(sys.stdin.readline)
    return json.loads(line) if line.strip() else {"cmd": "stop"}


def label(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, Failed) else type(exc).__name__



class Generator:
    """A load generator process: a job in on stdin, JSON events out on stdout."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())

    async def until(self, event: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                await self.process.wait()
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"load generator exited ({self.process.returncode}):\n{tail}")
            message: dict[str, Any] = json.loads(line)
            if message.get("event") == event:
                return message

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
