"""Envoy's own replies (`local_reply_config`) as OpenAI-style JSON errors.

What Envoy answers itself — no route, body too large, no reachable endpoint, timeout, and the empty 503 of an
unreachable ext_proc server under FailClose — gets a JSON body; the ext_proc servers' own ImmediateResponses (the
picker's 429/503, the router's 400) keep theirs. On a listener whose routes match on the model header, the 404 of a
request no route takes names the model the body-based router found and the models the routes serve.
"""

from __future__ import annotations

from typing import Any

from inferplane.gateway.extproc_config import any_of

MODEL_HEADER = "x-gateway-model-name"
# the 404 of the explicit no-match route (`envoy_config._not_found_route`) and of a virtual host without routes
NO_ROUTE_DETAILS = ("direct_response", "route_not_found")


def _json_error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": "%RESPONSE_CODE%"}}


def _status_is(code: int) -> dict[str, Any]:
    return {
        "status_code_filter": {
            "comparison": {"op": "EQ", "value": {"default_value": code, "runtime_key": "inferplane.no_key"}}
        }
    }


# Envoy's ext_proc filter fails a request (FailClose, or the body-based router) with an empty local reply whose
# response code details start with this prefix (`ext_proc_error_gRPC_error_14{...}` for an unreachable server,
# `..._message_timeout` for a slow one). An ImmediateResponse of a processor (the picker's 429/503, the router's 400)
# is a local reply too, but with its own details and JSON body, so matching on the details tells the two apart.
# No response flag is set for either, and `body_format` alone would apply to both.
EXTPROC_ERROR_DETAILS = "ext_proc_error"


def _extproc_failure(code: int, message: str, kind: str) -> dict[str, Any]:
    """A mapper for the processor-failure replies with `code`: the CEL access-log filter reads the details."""
    details = _cel(f"response.code_details.startsWith('{EXTPROC_ERROR_DETAILS}')")
    return {
        "filter": {"and_filter": {"filters": [_status_is(code), details]}},
        "body_format_override": {"json_format": _json_error(message, kind)},
    }


def _cel(expression: str) -> dict[str, Any]:
    return {
        "extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": any_of(
                "envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter", expression=expression
            ),
        }
    }


def _model_not_found(routed_models: list[str]) -> list[dict[str, Any]]:
    """The no-route 404 on a listener that routes on the body's model: with the model the router found, or the
    reason there is none (a GET has no body to name one)."""
    no_route = (
        "response.code == 404 && response.code_details in [" + ", ".join(f"'{d}'" for d in NO_ROUTE_DETAILS) + "]"
    )
    served = ", ".join(routed_models) or "none"
    return [
        {
            "filter": _cel(f"{no_route} && '{MODEL_HEADER}' in request.headers"),
            "body_format_override": {
                "json_format": _json_error(
                    f"no route serves model `%REQ({MODEL_HEADER})%` (models routed here: {served})", "NotFoundError"
                )
            },
        },
        {
            "filter": _cel(f"{no_route} && !('{MODEL_HEADER}' in request.headers)"),
            "body_format_override": {
                "json_format": _json_error(
                    "no route matches this request: the routes here match on the `model` of the JSON body, and this "
                    f"request has none (a GET has no body; models routed here: {served})",
                    "NotFoundError",
                )
            },
        },
    ]


def local_reply_config(max_request_bytes: int, routed_models: list[str] | None = None) -> dict[str, Any]:
    """Gateway-generated errors as OpenAI-style JSON (404 no route, 413 body too large, 503 no reachable backend or
    picker, 504 timeout); replies from the model servers and the ext_proc servers' own answers pass unchanged."""

    def mapper(flags: list[str], message: str, kind: str) -> dict[str, Any]:
        return {
            "filter": {"response_flag_filter": {"flags": flags}},
            "body_format_override": {"json_format": _json_error(message, kind)},
        }

    # only Envoy itself answers 413 here: a body over the buffer limit of the buffered ext_proc filters
    too_large = {
        "filter": _status_is(413),
        "body_format_override": {
            "json_format": _json_error(
                f"request body larger than the gateway's limit of {max_request_bytes} bytes", "BadRequestError"
            )
        },
    }
    models = _model_not_found(routed_models) if routed_models is not None else []
    return {
        "mappers": [
            *models,
            _extproc_failure(
                503,
                "the endpoint picker (or body-based router) of this route cannot be reached",
                "ServiceUnavailableError",
            ),
            _extproc_failure(
                504, "the endpoint picker (or body-based router) of this route did not answer in time", "TimeoutError"
            ),
            too_large,
            mapper(["NR"], "no route matches this request (path, host, headers or model)", "NotFoundError"),
            mapper(["UT"], "the backend did not answer within the route's timeout", "TimeoutError"),
            mapper(
                ["UH", "UF", "URX", "NC", "UO", "UC", "LH"],
                "no ready endpoint can serve this request",
                "ServiceUnavailableError",
            ),
        ]
    }
