"""WeChat's API as this server uses it.

Lives here: the client (access tokens, drawing codes, jscode2session, errcode mapping, bounded
timeouts), decrypting the mini program's user data (`crypto`) and the sandbox's stand-in that
answers like WeChat over HTTP (`sandbox`).

May import: `storage` (the access token is cached in PostgreSQL, shared by every process) and
the base modules.
"""
