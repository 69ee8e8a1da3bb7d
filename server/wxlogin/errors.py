"""One error vocabulary, rendered as the contract's JSON by one middleware."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import ClassVar

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("wxlogin")


class ApiError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "The request is not valid."

    def __init__(self, message: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return json_error(self.status, self.code, self.message, self.headers)


class BadInput(ApiError):
    pass


class CodeRejected(ApiError):
    code = "code_rejected"
    default_message = "WeChat refused this login code; call wx.login again and retry."


class PhoneCodeRejected(ApiError):
    code = "phone_code_rejected"
    default_message = "WeChat refused the phone number's code; tap the phone button again."


class PhoneRequired(ApiError):
    code = "phone_required"
    default_message = "This site needs your phone number to log in: use the phone button."


class LinkUnavailable(ApiError):
    status = 409
    code = "link_unavailable"
    default_message = (
        "WeChat makes no link that opens the mini program for this site; scan the code instead "
        "(or save it and scan it from your album in WeChat)."
    )


class CodeAlreadyUsed(ApiError):
    code = "code_already_used"
    default_message = "This login code was already used; call wx.login again for a fresh one."


class InvalidEncryptedData(ApiError):
    code = "invalid_encrypted_data"
    default_message = (
        "The encrypted user data could not be verified; call wx.login first, then fetch the "
        "data, and send both in the same request."
    )


class NotLoggedIn(ApiError):
    status = 401
    code = "not_logged_in"
    default_message = "You are not logged in."


class NotInGroup(ApiError):
    status = 403
    code = "not_in_group"
    default_message = "Your account is not in the group this page is for."


class LoginRefused(ApiError):
    """The owner's rules turn this person away (WXLOGIN_REGISTRATION, or a disabled account);
    `code` is also the reason the browser's poll gives."""


class ApprovalPending(LoginRefused):
    status = 403
    code = "approval_pending"
    default_message = (
        "Your account is waiting for the site owner's approval; you can log in once they "
        "approve it."
    )


class NotInvited(LoginRefused):
    status = 403
    code = "not_invited"
    default_message = "This site lets people in by invitation only; ask its owner for a link."


class UserDisabled(LoginRefused):
    status = 403
    code = "user_disabled"
    default_message = "Your account on this site is disabled; ask its owner."


REFUSALS: dict[str, type[LoginRefused]] = {
    error.code: error for error in (ApprovalPending, NotInvited, UserDisabled)
}


class InvitationInvalid(ApiError):
    status = 410
    code = "invitation_invalid"
    default_message = (
        "This invitation link is unknown, expired, revoked or used up; ask the owner for a new one."
    )


class BadSignature(ApiError):
    status = 403
    code = "bad_signature"
    default_message = "This request is not signed with the official account's Token."


class NotOwner(ApiError):
    status = 403
    code = "not_owner"
    default_message = "Only the site's owners (the group `admin`) may do this."


class ForbiddenOrigin(ApiError):
    status = 403
    code = "forbidden_origin"
    default_message = "This request came from another site and was refused."


class SceneNotFound(ApiError):
    status = 404
    code = "scene_not_found"
    default_message = "No such login attempt; start a new one."


class AvatarNotFound(ApiError):
    status = 404
    code = "not_found"
    default_message = "There is no such avatar."


class SceneConflict(ApiError):
    status = 409
    code = "scene_conflict"
    default_message = "This login attempt can no longer take that step."


class SceneAlreadyClaimed(SceneConflict):
    code = "scene_already_claimed"
    default_message = "Someone else already scanned this code; the site should show a new one."


class SceneAlreadyConfirmed(SceneConflict):
    code = "scene_already_confirmed"
    default_message = "This login was already confirmed."


class SceneDenied(SceneConflict):
    code = "scene_denied"
    default_message = "This login was declined; the site should show a new code."


class SceneNotScanned(SceneConflict):
    code = "scene_not_scanned"
    default_message = "Only whoever scanned this code can decline it; scan it first."


class CodeReused(SceneConflict):
    code = "code_reused"
    default_message = "This login code was already used for another step; call wx.login again."


class LoginAlreadyUsed(SceneConflict):
    code = "login_already_used"
    default_message = "This login was already completed; start a new one to log in again."


class SceneExpired(ApiError):
    status = 410
    code = "scene_expired"
    default_message = "This login code has expired; the site should show a new one."


class SceneClosed(ApiError):
    status = 410
    code = "scene_closed"
    default_message = "This login attempt is finished; its code is no longer shown."


class WeChatError(ApiError):
    status = 502
    code = "wechat_error"
    default_message = "WeChat gave an unexpected answer; try again later."


class WeChatBusy(ApiError):
    status = 503
    code = "wechat_busy"
    default_message = "WeChat is busy right now; try again shortly."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests; wait a moment and try again."

    def __init__(self, what: str, *, retry_after: int) -> None:
        retry_after = max(1, retry_after)
        super().__init__(
            f"Too many {what}; try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


class DrawBudgetSpent(ApiError):
    status = 503
    code = "login_busy"
    default_message = "Too many people are logging in right now; try again in a moment."

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class DatabaseUnavailable(ApiError):
    status = 503
    code = "database_unavailable"
    default_message = "The login service cannot reach its database; try again shortly."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "2"})


class WeChatUnreachable(ApiError):
    status = 504
    code = "wechat_unreachable"
    default_message = "WeChat did not answer in time; try again."


def json_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


_HTTP_CODES = {
    400: ("bad_request", "The request is not valid."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not take that method."),
    413: ("body_too_large", "The request body is larger than 64 KiB."),
}

_DB_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.OperatorInterventionError,  # shutting down, starting up, query cancelled
)


class OAuthError(ApiError):
    """An OAuth 2.0 error (RFC 6749 §5.2) from the token or userinfo endpoint: its `error` is
    one of the protocol's codes, and `error_description` says what `message` says."""

    def __init__(self, oauth_code: str, message: str, *, headers: Mapping[str, str] | None = None):
        super().__init__(message, headers=headers)
        self.oauth_code = oauth_code

    def response(self) -> web.Response:
        body = {"error": self.oauth_code, "error_description": self.message,
                "message": self.message}
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **self.headers}
        return web.json_response(body, status=self.status, headers=headers)


class OAuthClientError(OAuthError):
    status = 401  # the client failed to authenticate, or the bearer token is no good
    code = "invalid_client"


class InternalError(ApiError):
    status = 500
    code = "internal_error"
    default_message = "Something went wrong on our side."


def as_api_error(exc: Exception, context: str) -> ApiError:
    """The answer for any failure; one place decides it for every writer of errors."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, _DB_ERRORS):
        log.exception("database unavailable while %s", context)
        return DatabaseUnavailable()
    log.exception("unhandled error while %s", context)
    return InternalError()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        return json_error(exc.status, code, message)
    except Exception as exc:  # CancelledError is a BaseException and passes through
        return as_api_error(exc, f"serving {request.method} {request.path}").response()
