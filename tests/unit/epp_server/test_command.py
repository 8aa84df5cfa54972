"""`inferplane epp` flags (incl. upstream spellings), configuration errors and discovery choices."""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from inferplane.api.diagnostics import DiagnosticsError
from inferplane.api.epp_config import default_epp_config
from inferplane.cli import build_parser
from inferplane.epp import command
from inferplane.epp.datalayer.discovery import StaticDiscovery
from inferplane.epp.datalayer.endpoints_file import FileDiscovery
from inferplane.epp.fastmetrics import FastHistogram
from inferplane.epp.integration import needs_body
from inferplane.errors import UsageError


def parse(*argv: str) -> argparse.Namespace:
    return build_parser("epp").parse_args(["epp", *argv])


def test_upstream_spellings() -> None:
    a = parse(
        "--poolName", "p", "--poolNamespace", "ns", "--grpcPort", "1", "--grpcHealthPort", "2", "--metricsPort", "3",
        "--refreshMetricsInterval", "20ms", "--configText", "x", "-v=4", "--endpoints", "127.0.0.1:8000",
    )  # fmt: skip
    assert (a.pool_name, a.pool_namespace, a.grpc_port, a.grpc_health_port, a.metrics_port) == ("p", "ns", 1, 2, 3)
    assert a.refresh_metrics_interval == "20ms"
    assert a.config_text == "x"
    assert a.log_verbosity == 4
    assert parse("--pool-name", "p", "--configFile", "f.yaml").config_file == "f.yaml"


def test_config_errors_name_file_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "epp.yaml"
    f.write_text(
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
        "plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: nope\n"
    )
    with pytest.raises(DiagnosticsError) as exc:
        command.load_config(parse("--pool-name", "p", "--config-file", str(f)))
    text = str(exc.value)
    assert f"{f}:" in text
    assert "pluginRef" in text
    assert "nope" in text


def test_default_config_when_none_given() -> None:
    assert command.load_config(parse("--pool-name", "p")) == default_epp_config()


def test_discovery_choices(tmp_path: Path) -> None:
    assert isinstance(command.build_discovery(parse("--pool-name", "p", "--endpoints", "127.0.0.1:1")), StaticDiscovery)
    src = command.build_discovery(parse("--pool-name", "p", "--endpoints-file", str(tmp_path / "e.json")))
    assert isinstance(src, FileDiscovery)
    with pytest.raises(UsageError, match="no endpoints"):
        command.build_discovery(parse("--pool-name", "p"))
    with pytest.raises(UsageError, match="cannot be combined"):
        command.build_discovery(parse("--pool-name", "p", "--discovery", "kubernetes", "--endpoints", "127.0.0.1:1"))


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--pool-name", "p"], "no endpoints"),
        (["--pool-name", "p", "--endpoints", "nohost"], "is not host:port"),
        (["--pool-name", "p", "--endpoints", "127.0.0.1:1", "--refresh-metrics-interval", "soon"], "duration"),
        (["--pool-name", "p", "--endpoints", "127.0.0.1:1", "--config-text", "kind: [unclosed"], "--config-text"),
        (
            [
                "--pool-name",
                "p",
                "--endpoints",
                "127.0.0.1:1",
                "--secure-serving",
                "true",
                "--cert-path",
                "/nonexistent",
            ],
            "tls.crt not found",
        ),
        (["--pool-name", "p", "--endpoints", "127.0.0.1:1", "--cert-path", "/tmp"], "--secure-serving true"),
    ],
)
def test_cli_reports_errors_without_traceback(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    from inferplane.cli import main

    assert main(["epp", *argv]) in (1, 2)
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_cli_process_exits_cleanly_on_bad_input() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "inferplane", "epp", "--pool-name", "p", "--endpoints", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "is not host:port" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_needs_body() -> None:
    assert needs_body(default_epp_config())  # prefix-cache-scorer hashes the prompt
    cfg = default_epp_config().model_copy(update={"plugins": [p for p in default_epp_config().plugins
                                                              if p.type != "prefix-cache-scorer"]})  # fmt: skip
    assert not needs_body(cfg)
    assert needs_body(cfg, has_model_rewrites=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 5, allow_nan=False), max_size=40), st.integers(0, 2**32))
def test_fast_histogram_exposition_matches_a_naive_count(values: list[float], seed: int) -> None:
    bounds = (0.001, 0.01, 0.1, 1.0)
    h = FastHistogram("h_seconds", "doc", ["a"], bounds)
    random.Random(seed).shuffle(values)
    for v in values:
        h.observe(("x",), v)
    reg = CollectorRegistry()
    reg.register(h)
    from prometheus_client import generate_latest

    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(reg).decode())}
    if not values:
        assert not fams["h_seconds"].samples
        return
    samples = {(s.name, s.labels.get("le")): s.value for s in fams["h_seconds"].samples}
    for b in bounds:
        assert samples[("h_seconds_bucket", str(b))] == sum(1 for v in values if v <= b)
    assert samples[("h_seconds_bucket", "+Inf")] == len(values)
    assert samples[("h_seconds_count", None)] == len(values)
    assert samples[("h_seconds_sum", None)] == pytest.approx(sum(values))


def test_kubernetes_discovery_feeds_objectives() -> None:
    from inferplane.epp.datalayer.kubernetes import KubernetesDiscovery, ObjectiveSpec

    got: list[list[object]] = []
    src = command.build_discovery(
        parse("--pool-name", "p", "--pool-namespace", "ns", "--discovery", "kubernetes"), None, got.append
    )
    assert isinstance(src, KubernetesDiscovery)
    assert (src.pool_name, src.namespace) == ("p", "ns")
    assert src.on_objectives is not None
    src.on_objectives({"batch": ObjectiveSpec("batch", -1)})
    assert [(o.name, o.priority) for o in got[0]] == [("batch", -1)]  # type: ignore[attr-defined]


def test_secure_serving_defaults_to_tls_in_a_cluster_and_plaintext_locally(tmp_path: Path) -> None:
    assert command.serving_cert_for(parse("--pool-name", "p", "--endpoints", "127.0.0.1:1")) is None
    assert command.serving_cert_for(parse("--pool-name", "p", "--discovery", "kubernetes")) is not None
    off = parse("--pool-name", "p", "--discovery", "kubernetes", "--secure-serving", "false")
    assert command.serving_cert_for(off) is None
    on = command.serving_cert_for(parse("--pool-name", "p", "--endpoints", "127.0.0.1:1", "--secureServing", "true"))
    assert on is not None
    assert on.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    (tmp_path / "tls.crt").write_bytes(on.cert_pem)
    (tmp_path / "tls.key").write_bytes(on.key_pem)
    given = parse("--pool-name", "p", "--discovery", "kubernetes", "--cert-path", str(tmp_path))
    assert command.serving_cert_for(given) == on


def test_rendered_manifest_runs_the_picker_with_tls() -> None:
    """The Kubernetes renderer's arguments, parsed by the picker's own parser, give a TLS ext_proc port (what GKE's
    gateway and the reference Envoy cluster expect); a target can still pin it explicitly."""
    from inferplane.deploy.epp import epp_args
    from inferplane.deploy.plan import PoolPlan

    pool = PoolPlan(name="p", selector={"app": "x"}, target_ports=(8000,), epp_config="")
    assert command.serving_cert_for(build_parser("epp").parse_args(epp_args(pool, "ns"))) is not None
    plain = build_parser("epp").parse_args(epp_args(pool, "ns", secure_serving=False))
    assert command.serving_cert_for(plain) is None
