"""PostgreSQL, and nothing about HTTP or WeChat.

Lives here: borrowing connections (`db`), the queries (`queries`), server-side sessions behind
aiohttp-session (`sessions`), the numbered migrations' runner, the embedded PostgreSQL, the
sweeper of expired rows, and the secrets the server generates for itself (`secrets`).

May import: the base modules only.
"""
