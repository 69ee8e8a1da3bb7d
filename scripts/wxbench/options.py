"""The command line: its flags, and the sizes (a Plan) they choose."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from . import __doc__ as OVERVIEW


@dataclass
class Plan:
    waiting: int
    hold: float
    release_push: int
    rate: float
    steady_seconds: float
    burst: int
    concurrency: int
    warmup: float
    login_seconds: float
    browsers: int
    delays: tuple[float, float]
    idle_spread: float
    idle_window: float


FULL = Plan(waiting=10_000, hold=10.0, release_push=20, rate=50.0, steady_seconds=10.0,
            burst=1000, concurrency=64, warmup=3.0, login_seconds=20.0, browsers=200,
            delays=(3.0, 15.0), idle_spread=50.0, idle_window=60.0)
QUICK = Plan(waiting=500, hold=3.0, release_push=10, rate=50.0, steady_seconds=2.0, burst=100,
             concurrency=32, warmup=1.0, login_seconds=4.0, browsers=30, delays=(2.0, 5.0),
             idle_spread=50.0, idle_window=10.0)


def parse(argv: list[str]) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(
        prog="./scripts/bench", description=OVERVIEW.split("\n\n")[0] if OVERVIEW else None)
    parser.add_argument("--quick", action="store_true",
                        help="small numbers for a smoke run (about 2 minutes)")
    parser.add_argument("--waiting", type=int, metavar="C", help="section 1's waiting browsers")
    parser.add_argument("--burst", type=int, metavar="N", help="section 2's burst size")
    parser.add_argument("--rate", type=float, help="section 2's steady logins per second")
    parser.add_argument("--concurrency", type=int, help="section 3's people at once")
    parser.add_argument("--login-seconds", type=float, help="section 3's measured window")
    parser.add_argument("--browsers", type=int, help="section 5's browsers per approach")
    parser.add_argument("--seed", type=int, default=7, help="section 5's delays (default 7)")
    parser.add_argument("--idle-spread", type=float, metavar="S",
                        help="section 5's pages nobody scans open over S seconds")
    parser.add_argument("--idle-window", type=float, metavar="W",
                        help="section 5's requests of those pages are counted over W seconds")
    parser.add_argument("--sections", default="1235",
                        help="which sections to run, e.g. 35 (default 1235; 4 comes with 3; "
                        "6, OpenID Connect logins, and 7, the owner's page with 10,000 users and "
                        "100,000 logins, and 8, the official account's events, on request)")
    parser.add_argument("--profile", metavar="FILE",
                        help="run server A under pyinstrument and write its profile to FILE")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    overrides = {"waiting": args.waiting, "burst": args.burst, "rate": args.rate,
                 "concurrency": args.concurrency, "login_seconds": args.login_seconds,
                 "browsers": args.browsers, "idle_spread": args.idle_spread,
                 "idle_window": args.idle_window}
    plan = Plan(**{**plan.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    return args, plan
