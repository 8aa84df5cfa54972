"""Errors the endpoint picker answers with, and their HTTP form.

Upstream turns every error into an ext_proc ImmediateResponse whose status follows the error code
(GIE `pkg/common/error/error.go`); inferplane keeps the same codes and statuses and adds an OpenAI-style JSON body
so clients of the gateway see the same error shape as from a model server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum


class ErrorCode(Enum):
    """Upstream error codes with the HTTP status each maps to."""

    BAD_REQUEST = ("BadRequest", 400)
    UNAUTHORIZED = ("Unauthorized", 401)
    FORBIDDEN = ("Forbidden", 403)
    NOT_FOUND = ("NotFound", 404)
    RESOURCE_EXHAUSTED = ("ResourceExhausted", 429)
    INTERNAL = ("Internal", 500)
    SERVICE_UNAVAILABLE = ("ServiceUnavailable", 503)

    @property
    def upstream_name(self) -> str:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]

    @classmethod
    def for_status(cls, status: int) -> ErrorCode:
        """The code answering with HTTP `status` (Internal for a status no code maps to)."""
        for code in cls:
            if code.http_status == status:
                return code
        return cls.INTERNAL


# The OpenAI Python client's exception class names, which is also what vLLM puts in `error.type`.
_OPENAI_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


@dataclass(frozen=True)
class EppError(Exception):
    """A request the endpoint picker refuses; becomes an ImmediateResponse."""

    code: ErrorCode
    message: str
    param: str | None = None

    def __str__(self) -> str:
        return f"inference error: {self.code.upstream_name} - {self.message}"

    @property
    def http_status(self) -> int:
        return self.code.http_status

    def openai_body(self) -> bytes:
        status = self.code.http_status
        return json.dumps(
            {
                "error": {
                    "message": str(self),
                    "type": _OPENAI_TYPES.get(status, "APIError"),
                    "param": self.param,
                    "code": status,
                }
            },
            separators=(",", ":"),
        ).encode()


def bad_request(message: str, param: str | None = None) -> EppError:
    return EppError(ErrorCode.BAD_REQUEST, message, param)


def unavailable(message: str) -> EppError:
    return EppError(ErrorCode.SERVICE_UNAVAILABLE, message)


def exhausted(message: str) -> EppError:
    return EppError(ErrorCode.RESOURCE_EXHAUSTED, message)


def internal(message: str) -> EppError:
    return EppError(ErrorCode.INTERNAL, message)
