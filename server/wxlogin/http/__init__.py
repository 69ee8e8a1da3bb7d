"""The front doors over HTTP, and the aiohttp application that holds them.

Lives here: the app factory (`app`), its typed keys and services (`keys`), the middlewares, the
routes and their handlers (the browser's API, the companion mini program's steps, the pages,
operations, the OpenAPI description), input parsing, rate limits, and mounting into a host app.

May import: `login`, `wechat`, `storage` and the base modules. Handlers only parse input and
shape answers; the login's operations live in `login`. Nothing below imports from here.
"""
