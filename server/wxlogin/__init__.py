"""wxacode-login: scan-with-WeChat login for any website, as an aiohttp application or a server.

    from wxlogin import Settings, create_app, current_user, login_required, mount

The package, in layers (each imports only from the layers below it; docs/architecture.md):

- `ops`      the command line (`wxlogin serve|migrate|doctor|users`), workers, the doctor;
- `http`     the front doors: the app factory, handlers, pages, mounting into a host app;
- `login`    the login's operations: scenes and their states, the phone's steps, code draws,
             avatars, waking the waiting polls;
- `wechat`   WeChat's API (client, crypto) and the sandbox's stand-in;
- `storage`  PostgreSQL: pool, queries, sessions, migrations, the embedded server, the sweeper,
             generated secrets;
- base modules: settings, clock, errors, text, i18n, logs, metrics, version.

This module is the public face only; nothing inside the package imports it. Its names are
loaded on first use (PEP 562), so importing one module of the package (`wxlogin.clock`, say)
does not load the whole server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .http.app import create_app
    from .http.mount import current_user, login_required, mount
    from .settings import Settings

__all__ = ["Settings", "__version__", "create_app", "current_user", "login_required", "mount"]

_HOMES = {
    "Settings": ".settings",
    "create_app": ".http.app",
    "current_user": ".http.mount",
    "login_required": ".http.mount",
    "mount": ".http.mount",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'wxlogin' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
