"""One module per section of the output, each with both its sides: the job its load generators
run (in their own processes) and what the orchestrator measures and prints (`run`). Section 4
(WeChat calls per login) reports on section 3's runs."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from .logins import job_logins
from .polling import job_compare, job_idle
from .waiting import job_waiting
from .wakeup import job_wakeup

JOBS: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, None]]] = {
    "waiting": job_waiting, "wakeup": job_wakeup, "logins": job_logins, "compare": job_compare,
    "idle": job_idle,
}
