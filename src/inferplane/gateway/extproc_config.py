"""The ext_proc side of the generated Envoy config: one filter per endpoint picker (and one for the body-based
router), their processing modes and failure modes, the clusters that reach them, and the `override_host` policy
that makes a pool's cluster honour the picker's choice (extproc.md §1, §5, §6.2).

FailOpen is `failure_mode_allow: true`: with the picker unreachable the request goes on without a pick and the pool
cluster's fallback round robin chooses. FailClose answers 503 (`status_on_error`) instead of Envoy's default 500;
Envoy sends that reply with an empty body, which `envoy_config` maps to an OpenAI-style JSON error by its response
code details (the processors' own ImmediateResponses keep their bodies).
Envoy ≥ 1.35 refuses `failure_mode_allow` with FULL_DUPLEX_STREAMED, so FailOpen needs BUFFERED or STREAMED.
"""

from __future__ import annotations

from typing import Any

from inferplane.errors import ConfigError
from inferplane.gateway.plan import PoolBinding, parse_host_port

EXTPROC = "envoy.filters.http.ext_proc"
_T = "type.googleapis.com/"
# switches a picker's filter off for one route; read by the filter when it runs (after any re-routing)
EXTPROC_OFF = {"@type": _T + "envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute", "disabled": True}


def any_of(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": _T + type_name, **fields}


def epp_cluster_name(key: str) -> str:
    return "epp." + key.replace("/", ".")


def extproc_filter_name(key: str) -> str:
    return f"{EXTPROC}/pool/{key}"


def static_cluster(name: str, address: str, *, http2: bool, connect_timeout_s: float) -> dict[str, Any]:
    host, port = parse_host_port(address, what=f"cluster {name}")
    out: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": f"{connect_timeout_s:g}s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(host, port)}}]}],
        },
    }
    if http2:
        out["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": any_of(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http2_protocol_options": {}},
            )
        }
    return out


def socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def processing_mode(body_mode: str, response_phases: bool) -> dict[str, str]:
    duplex = body_mode == "FULL_DUPLEX_STREAMED"
    trailers = "SEND" if duplex else "SKIP"
    mode = {
        "request_header_mode": "SEND",
        "request_body_mode": body_mode,
        "request_trailer_mode": trailers,
        "response_header_mode": "SKIP",
        "response_body_mode": "NONE",
        "response_trailer_mode": "SKIP",
    }
    if response_phases:
        mode["response_header_mode"] = "SEND"
        mode["response_body_mode"] = "FULL_DUPLEX_STREAMED" if duplex else "STREAMED"
        mode["response_trailer_mode"] = trailers
    return mode


def extproc_filter(
    name: str, cluster: str, authority: str, mode: dict[str, str], *, fail_open: bool, timeout_s: float,
    forward_lb_metadata: bool,
) -> dict[str, Any]:  # fmt: skip
    config = any_of(
        "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
        grpc_service={"envoy_grpc": {"cluster_name": cluster, "authority": authority}, "timeout": f"{timeout_s:g}s"},
        failure_mode_allow=fail_open,
        # FailClose: an unreachable processor is "no endpoint available", 503, not Envoy's default 500
        status_on_error={"code": 503},
        processing_mode=mode,
        message_timeout=f"{timeout_s:g}s",
        metadata_options={
            "receiving_namespaces": {"untyped": ["envoy.lb"]},
            **({"forwarding_namespaces": {"untyped": ["envoy.lb"]}} if forward_lb_metadata else {}),
        },
    )
    return {"name": name, "typed_config": config}


def pool_filter(key: str, pool: PoolBinding) -> dict[str, Any]:
    if pool.failure_mode == "FailOpen" and pool.body_mode == "FULL_DUPLEX_STREAMED":
        raise ConfigError(
            f"InferencePool {key}: FailOpen cannot be combined with FULL_DUPLEX_STREAMED body mode in Envoy ≥ 1.35",
            hint="use body mode BUFFERED (the default) or failureMode FailClose",
        )
    return extproc_filter(
        extproc_filter_name(key),
        epp_cluster_name(key),
        pool.epp_address,
        processing_mode(pool.body_mode, pool.response_phases),
        fail_open=pool.failure_mode == "FailOpen",
        timeout_s=pool.message_timeout_s,
        forward_lb_metadata=pool.response_phases,
    )


def override_host_policy() -> dict[str, Any]:
    return {
        "policies": [
            {
                "typed_extension_config": {
                    "name": "envoy.load_balancing_policies.override_host",
                    "typed_config": any_of(
                        "envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost",
                        override_host_sources=[
                            {"metadata": {"key": "envoy.lb", "path": [{"key": "x-gateway-destination-endpoint"}]}},
                            {"header": "x-gateway-destination-endpoint"},
                        ],
                        selected_host_key={
                            "key": "envoy.lb",
                            "path": [{"key": "x-gateway-destination-endpoint-served"}],
                        },
                        fallback_policy={
                            "policies": [
                                {
                                    "typed_extension_config": {
                                        "name": "envoy.load_balancing_policies.round_robin",
                                        "typed_config": any_of(
                                            "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"
                                        ),
                                    }
                                }
                            ]
                        },
                    ),
                }
            }
        ]
    }


def dead_replica_ejection() -> dict[str, Any]:
    """Outlier detection for a pool cluster: one refused or reset connection (a local-origin failure) ejects the
    replica at once, so the round-robin fallback (FailOpen, or a retry after the picker's list is used up) stops
    choosing a replica that just died before the endpoint list catches up. `override_host` itself does not look at
    health (Envoy 1.40 takes the picker's hosts as listed); retries skip them through the previous-hosts predicate.
    HTTP 5xx from a live server never ejects (those thresholds are out of reach): the endpoint picker, not Envoy,
    judges a replica by its answers."""
    return {
        "split_external_local_origin_errors": True,
        "consecutive_local_origin_failure": 1,
        "enforcing_consecutive_local_origin_failure": 100,
        "consecutive_5xx": 1_000_000,
        "consecutive_gateway_failure": 1_000_000,
        "interval": "1s",
        "base_ejection_time": "1s",
        "max_ejection_percent": 100,
    }
