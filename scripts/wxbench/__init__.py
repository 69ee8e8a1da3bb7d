"""Load benchmark on a real PostgreSQL: waiting browsers, wake-up latency, logins per second,
WeChat calls per login, and 1-second interval polling against long-polling.

`./scripts/bench` (full figures, several minutes) or `./scripts/bench --quick` (a smoke run)
starts everything itself: the embedded PostgreSQL, the WeChat stand-in (tests/fakewechat.py)
served over HTTP from this process, `python -m wxlogin serve` processes, and load generators:
this package again, run with --generator in separate processes, each a tiny HTTP/1.1 client on
asyncio streams with one keep-alive connection and one session cookie per simulated browser.
Every section prints a markdown table as it completes; all processes and temporary folders
go on exit, Ctrl-C included.

`./scripts/bench` runs `python scripts/wxbench`. `cli` is the entry point, `options` the flags
and the sizes they choose, `bench` the orchestrator (it starts PostgreSQL, the stand-in of
`standin`, the servers and the load generators of `generator`, then runs the sections), and
`sections` holds one module per section. They share `common`, `client` (the HTTP client), `steps`
(the browser's and the phone's), `metrics` (/metrics), `procfs` (/proc), `postgres` (its activity
and statement log) and `tables` (the markdown).
"""
