"""The runtime's pure parts: vLLM command lines, backends, the process plan, endpoint files, status parsing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.errors import InferplaneError
from inferplane.runtime.backends import ReplicaContext, VllmBackend, expand_k8s_vars, get_backend
from inferplane.runtime.components import ComponentSpec, Kind, ProbeType, RestartPolicy, Stage
from inferplane.runtime.endpoints import EndpointPublisher
from inferplane.runtime.plan import RuntimeOptions, RuntimePlan, build_plan
from inferplane.runtime.state import StateDir, find_state
from inferplane.runtime.status import parse_metrics
from inferplane.runtime.templates import (
    LwsShape,
    PoolTemplate,
    ServerTemplate,
    ServiceTemplate,
    drop_flags,
    flag_value,
    replace_port,
    split_vllm_serve,
)

LEADER_SCRIPT = (
    "ray start --head --port=6379 && vllm serve mistralai/Mixtral-8x7B-Instruct-v0.1 --port 8000 "
    "--tensor-parallel-size 8 --enable-prefix-caching; echo done"
)


def test_split_vllm_serve_finds_the_command_inside_a_shell_script() -> None:
    model, args = split_vllm_serve(["sh", "-c", LEADER_SCRIPT])
    assert model == "mistralai/Mixtral-8x7B-Instruct-v0.1"
    assert args == ["--port", "8000", "--tensor-parallel-size", "8", "--enable-prefix-caching"]
    assert split_vllm_serve(["ray", "start", "--block"]) == (None, [])
    assert split_vllm_serve(["/usr/bin/vllm", "serve", "m", "--port=9"]) == ("m", ["--port=9"])


flag_names = st.sampled_from(["--port", "--host", "--model", "--max-model-len"])
values = st.text(alphabet="abc019", min_size=1, max_size=4)
arg_lists = st.lists(
    st.one_of(
        st.tuples(flag_names, values).map(lambda fv: [fv[0], fv[1]]),
        st.tuples(flag_names, values).map(lambda fv: [f"{fv[0]}={fv[1]}"]),
        st.sampled_from([["--enable-prefix-caching"], ["--dtype=half"]]),
    ),
    max_size=8,
).map(lambda chunks: [a for c in chunks for a in c])


@given(arg_lists)
def test_drop_flags_removes_both_spellings_and_keeps_the_rest(args: list[str]) -> None:
    out = drop_flags(args, {"--port", "--host"})
    assert flag_value(out, "--port") is None
    assert flag_value(out, "--host") is None
    assert flag_value(out, "--model") == flag_value(args, "--model")
    assert out.count("--enable-prefix-caching") == args.count("--enable-prefix-caching")


@given(st.integers(1, 65535), st.integers(1, 65535))
def test_replace_port_rewrites_every_spelling(old: int, new: int) -> None:
    words = ["--port", str(old), f"--port={old}", f"vllm serve m --port {old} --x"]
    out = replace_port(words, old, new)
    assert out == ["--port", str(new), f"--port={new}", f"vllm serve m --port {new} --x"]


def test_k8s_variable_expansion() -> None:
    env = {"LWS_LEADER_ADDRESS": "127.0.0.1", "LWS_GROUP_SIZE": "2"}
    assert expand_k8s_vars("ray start --address=$(LWS_LEADER_ADDRESS):6379", env) == (
        "ray start --address=127.0.0.1:6379"
    )
    assert expand_k8s_vars("$$(LWS_GROUP_SIZE) $(UNKNOWN) $(LWS_GROUP_SIZE)", env) == "$(LWS_GROUP_SIZE) $(UNKNOWN) 2"


def _servers() -> list[ServerTemplate]:
    return [
        ServerTemplate(
            name="llama",
            model="meta-llama/Llama-3.1-8B-Instruct",
            served_names=["meta-llama/Llama-3.1-8B-Instruct"],
            replicas=3,
            vllm_args=["--enable-prefix-caching", "--port=8000", "--max-model-len=16384"],
            labels={"app": "llama"},
            accelerator="nvidia",
            accelerator_count=1,
        ),
        ServerTemplate(
            name="mixtral",
            model="mistralai/Mixtral-8x7B-Instruct-v0.1",
            served_names=[],
            replicas=1,
            command=["sh", "-c", LEADER_SCRIPT],
            lws=LwsShape(name="mixtral-8x7b", size=3, worker_command=["sh", "-c", "ray start --block"]),
        ),
    ]


def _plan(tmp_path: Path, **opts: object) -> RuntimePlan:
    pools = [
        PoolTemplate(name="llama-pool", members=["llama"], failure_mode="FailOpen"),
        PoolTemplate(name="mixtral-pool", members=["mixtral"]),
    ]
    state = StateDir(tmp_path / "state")
    return build_plan(
        name="demo",
        source="deployments/demo",
        servers=_servers(),
        pools=pools,
        listener_ports=[80],
        use_bbr=bool(opts.pop("use_bbr", False)),
        state=state,
        options=RuntimeOptions(**opts),  # type: ignore[arg-type]
    )


def test_services_select_serving_replicas_by_labels_and_target_port(tmp_path: Path) -> None:
    services = [
        ServiceTemplate("llama-direct", selector={"app": "llama"}, target_ports=[8000]),
        ServiceTemplate("by-name", "prod", selector={"app": "llama"}, target_ports=["http"]),
        ServiceTemplate("wrong-port", selector={"app": "llama"}, target_ports=[9000, 9001]),
        ServiceTemplate("absent", selector={"app": "nope"}, target_ports=[8000]),
        ServiceTemplate("manual", selector={}, target_ports=[8000]),
    ]
    plan = build_plan(
        name="demo", source="d", servers=_servers(), pools=[], listener_ports=[80], use_bbr=False,
        state=StateDir(tmp_path / "state"), options=RuntimeOptions(port=0), services=services,
    )  # fmt: skip
    llamas = ["llama-0", "llama-1", "llama-2"]
    assert plan.services["default/llama-direct"].members == llamas
    assert plan.services["prod/by-name"].members == llamas  # a named targetPort is the serving port
    for key in ("default/wrong-port", "default/absent", "default/manual"):
        assert plan.services[key].members == []
    assert plan.component("llama-1").services == ["default/llama-direct", "prod/by-name"]
    assert plan.component("mixtral-8x7b-0").services == []
    assert plan.warnings == [
        "Service default/wrong-port selects llama :8000, but its target ports (9000, 9001) reach none of them; "
        "routes to it answer 500",
        "Service default/absent selects no model server (selector app=nope); routes to it answer 500",
        "Service default/manual has no selector, and inferplane runs no hand-made Endpoints; routes to it answer 500",
    ]
    again = RuntimePlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again.services == plan.services
    assert again.warnings == plan.warnings
    assert again.component("llama-0").services == ["default/llama-direct", "prod/by-name"]


def test_up_output_shows_the_service_warnings(tmp_path: Path) -> None:
    from rich.console import Console

    from inferplane.runtime.report import print_plan

    plan = build_plan(
        name="demo", source="d", servers=_servers(), pools=[], listener_ports=[80], use_bbr=False,
        state=StateDir(tmp_path / "state"), options=RuntimeOptions(port=0),
        services=[ServiceTemplate("absent", selector={"app": "nope"}, target_ports=[8000])],
    )  # fmt: skip
    console = Console(record=True, width=300)
    print_plan(console, plan, {"components": {}})
    assert "warning: Service default/absent selects no model server (selector app=nope)" in console.export_text()


def test_endpoint_publisher_sends_service_sets_to_envoy(tmp_path: Path) -> None:
    plan = build_plan(
        name="demo", source="d", servers=_servers(), pools=[], listener_ports=[80], use_bbr=False,
        state=StateDir(tmp_path / "state"), options=RuntimeOptions(port=0),
        services=[
            ServiceTemplate("direct", selector={"app": "llama"}, target_ports=[8000]),
            ServiceTemplate("absent", selector={"app": "nope"}, target_ports=[8000]),
        ],
    )  # fmt: skip
    sent: list[tuple[str, list[str]]] = []
    pub = EndpointPublisher(plan, envoy_services=lambda key, eps: sent.append((key, eps)))
    r0, r2 = plan.component("llama-0"), plan.component("llama-2")
    pub.services({"default/direct": [r0, r2]})
    assert sent == [("default/direct", [r0.endpoint, r2.endpoint])]  # no cluster exists for the empty Service
    pub.services({"default/direct": [r0, r2]})
    assert len(sent) == 1
    pub.services({"default/direct": [r2]})
    assert sent[-1] == ("default/direct", [r2.endpoint])


def test_plan_gives_every_process_its_own_port_and_maps_the_listener(tmp_path: Path) -> None:
    plan = _plan(tmp_path, port=18080, time_scale=0.1)
    ports = [p for c in plan.components for p in c.ports.values() if not (c.kind == Kind.ENVOY and p == 18080)]
    assert len(ports) == len(set(ports))
    assert plan.port_map == {80: 18080}
    assert plan.base_url == "http://127.0.0.1:18080"
    names = [c.name for c in plan.components]
    assert names[:5] == ["llama-0", "llama-1", "llama-2", "mixtral-8x7b-0", "mixtral-8x7b-0-1"]
    assert set(names[5:]) == {"mixtral-8x7b-0-2", "llama-pool-epp", "mixtral-pool-epp", "envoy"}
    assert [c.name for c in plan.servers("llama-pool")] == ["llama-0", "llama-1", "llama-2"]
    assert [c.name for c in plan.servers("mixtral-pool")] == ["mixtral-8x7b-0"]
    assert plan.pools["llama-pool"].failure_mode == "FailOpen"
    assert plan.models == ["meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert "body-based-router" not in names
    assert {c.stage for c in plan.components if c.kind == Kind.EPP} == {Stage.ROUTERS}
    assert plan.component("envoy").stage == Stage.GATEWAY


def test_sim_replicas_run_the_model_service_args_on_their_own_port(tmp_path: Path) -> None:
    plan = _plan(tmp_path, port=0, time_scale=0.1, profile="h100-llama-8b")
    r1 = plan.component("llama-1")
    argv = r1.argv
    assert argv[1:4] == ["-m", "inferplane", "sim"]
    assert flag_value(argv, "--port") == str(r1.ports["http"])
    assert argv.count("--port") + sum(a.startswith("--port=") for a in argv) == 1  # the cluster's 8000 is gone
    assert flag_value(argv, "--host") == "127.0.0.1"
    assert flag_value(argv, "--max-model-len") == "16384"
    assert "--enable-prefix-caching" in argv
    assert flag_value(argv, "--pod-name") == "llama-1"
    assert flag_value(argv, "--time-scale") == "0.1"
    assert flag_value(argv, "--profile") == "h100-llama-8b"
    assert r1.probe is not None
    assert r1.probe.type == ProbeType.HTTP
    assert r1.probe.path == "/health/ready"
    assert r1.restart == RestartPolicy.ALWAYS
    assert r1.labels == {"app": "llama"}


def test_lws_group_is_one_unit_with_the_lws_environment(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    leader, w1, w2 = (plan.component(n) for n in ("mixtral-8x7b-0", "mixtral-8x7b-0-1", "mixtral-8x7b-0-2"))
    assert {leader.unit, w1.unit, w2.unit} == {"mixtral-8x7b-0"}
    assert {leader.restart, w1.restart} == {RestartPolicy.GROUP}
    assert leader.serves
    assert not w1.serves
    assert [leader.env["LWS_WORKER_INDEX"], w1.env["LWS_WORKER_INDEX"], w2.env["LWS_WORKER_INDEX"]] == ["0", "1", "2"]
    assert {leader.env["LWS_GROUP_SIZE"], w2.env["LWS_GROUP_SIZE"]} == {"3"}
    assert w1.env["LWS_LEADER_ADDRESS"] == "127.0.0.1"
    assert w1.env["INFERPLANE_LWS_LEADER_NAME"] == "mixtral-8x7b-0.mixtral-8x7b.default"
    # the simulated leader gets the vLLM flags out of the shell script
    assert flag_value(leader.argv, "--tensor-parallel-size") == "8"
    assert flag_value(leader.argv, "--port") == str(leader.ports["http"])
    assert flag_value(w1.argv, "--leader") == f"127.0.0.1:{leader.ports['http']}"


def test_bbr_only_when_asked(tmp_path: Path) -> None:
    plan = _plan(tmp_path, use_bbr=True)
    bbr = plan.component("body-based-router")
    assert plan.bbr_address == f"127.0.0.1:{bbr.ports['grpc']}"
    assert bbr.probe is not None
    assert bbr.probe.type == ProbeType.GRPC_HEALTH


def test_plan_round_trips_through_json(tmp_path: Path) -> None:
    plan = _plan(tmp_path, use_bbr=True)
    again = RuntimePlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again.components == plan.components
    assert again.pools == plan.pools
    assert again.curl() == plan.curl()
    assert "/v1/completions" in plan.curl()


def _fake_bin(tmp_path: Path, name: str, body: str) -> None:
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_vllm_backend_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    (tmp_path / "bin").mkdir()
    servers = _servers()[:1]
    with pytest.raises(InferplaneError, match="vLLM is not installed") as info:
        VllmBackend().check(servers)
    assert "--backend sim" in str(info.value)
    _fake_bin(tmp_path, "vllm", "exit 0")
    with pytest.raises(InferplaneError, match=r"need 3 NVIDIA GPUs .* this machine has 0"):
        VllmBackend().check(servers)
    _fake_bin(tmp_path, "nvidia-smi", "echo 'GPU 0: H100'; echo 'GPU 1: H100'")
    with pytest.raises(InferplaneError, match=r"need 3 NVIDIA GPUs .* this machine has 2"):
        VllmBackend().check(servers)
    _fake_bin(tmp_path, "nvidia-smi", 'for i in 0 1 2; do echo "GPU $i: H100"; done')
    VllmBackend().check(servers)


def test_vllm_backend_pins_accelerators_and_runs_custom_commands_on_the_local_port() -> None:
    backend = get_backend("vllm")
    llama, mixtral = _servers()
    ctx = ReplicaContext(name="llama-2", port=20002, index=2, env={})
    assert backend.accelerator_env(llama, ctx) == {"CUDA_VISIBLE_DEVICES": "2"}
    pinned = ReplicaContext(name="llama-2", port=20002, index=2, env={"CUDA_VISIBLE_DEVICES": "7"})
    assert backend.accelerator_env(llama, pinned) == {}
    from inferplane.runtime.backends import BackendOptions

    argv = backend.leader_argv(llama, ctx, BackendOptions())
    assert argv[:3] == ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"]
    assert flag_value(argv, "--port") == "20002"
    assert "--port=8000" not in argv
    lctx = ReplicaContext(name="mixtral-8x7b-0", port=20010, index=0, env={})
    custom = backend.leader_argv(mixtral, lctx, BackendOptions())
    assert custom[:2] == ["sh", "-c"]
    assert "--port 20010" in custom[2]
    wctx = ReplicaContext(name="w", port=1, index=1, env={"LWS_LEADER_ADDRESS": "127.0.0.1"})
    mixtral.lws = LwsShape(
        name="m", size=2, worker_command=["sh", "-c", "ray start --address=$(LWS_LEADER_ADDRESS):6379"]
    )
    worker, ready = backend.worker_argv(mixtral, wctx, "127.0.0.1:20010", BackendOptions())
    assert worker == ["sh", "-c", "ray start --address=127.0.0.1:6379"]
    assert ready is None


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(InferplaneError, match="unknown backend 'tgi'"):
        get_backend("tgi")


def test_endpoint_publisher_writes_the_pickers_file(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    sent: list[tuple[str, list[str]]] = []
    pub = EndpointPublisher(plan, envoy=lambda pool, eps: sent.append((pool, eps)))
    r0, r2 = plan.component("llama-0"), plan.component("llama-2")
    pub({"llama-pool": [r0, r2], "mixtral-pool": []})
    doc = json.loads(Path(plan.pools["llama-pool"].endpoints_file).read_text())
    assert [(e["name"], e["port"]) for e in doc["endpoints"]] == [
        ("llama-0", r0.ports["http"]),
        ("llama-2", r2.ports["http"]),
    ]
    assert doc["endpoints"][0]["labels"] == {"app": "llama"}
    assert ("llama-pool", [r0.endpoint, r2.endpoint]) in sent
    assert ("mixtral-pool", []) in sent
    sent.clear()
    pub({"llama-pool": [r0, r2], "mixtral-pool": []})
    assert sent == []  # unchanged sets are not rewritten


METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 7.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 400.0
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 100.0
# TYPE vllm:request_success counter
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 5.0
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 2.0
"""


def test_status_reads_the_vllm_metrics() -> None:
    m = parse_metrics(METRICS)
    assert (m.running, m.waiting, m.kv_usage, m.prefix_hit_rate, m.requests_served) == (3, 7, 0.25, 0.25, 7)
    empty = parse_metrics("")
    assert empty.running is None
    assert empty.prefix_hit_rate is None


def test_find_state_by_name_or_the_only_one(tmp_path: Path) -> None:
    with pytest.raises(InferplaneError, match="no deployment state"):
        find_state(None, tmp_path)
    for name in ("a", "b"):
        s = StateDir.for_deployment(name, tmp_path)
        s.prepare()
        s.write_json(s.plan_file, {"name": name})
    assert find_state("b", tmp_path).path == tmp_path / "b"
    with pytest.raises(InferplaneError, match=r"no deployment is running .*\(stopped: a, b\)"):
        find_state(None, tmp_path)  # neither has a live `up` (test_runtime_cli_checks covers running ones)
    with pytest.raises(InferplaneError, match="no deployment named 'c'"):
        find_state("c", tmp_path)
    os.remove(tmp_path / "a" / "plan.json")
    assert find_state(None, tmp_path).path == tmp_path / "b"


def test_component_spec_json_round_trip() -> None:
    spec = ComponentSpec(name="x", kind=Kind.EPP, argv=["a"], ports={"grpc": 1}, stage=Stage.ROUTERS)
    assert ComponentSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_lws_restart_policy_none_supervises_each_pod_alone(tmp_path: Path) -> None:
    servers = _servers()
    assert servers[1].lws is not None
    servers[1].lws.restart_policy = "None"
    servers[1].lws.startup_policy = "LeaderReady"
    plan = build_plan(
        name="demo",
        source="x",
        servers=servers[1:],
        pools=[PoolTemplate(name="mixtral-pool", members=["mixtral"])],
        listener_ports=[80],
        use_bbr=False,
        state=StateDir(tmp_path),
        options=RuntimeOptions(port=0),
    )
    leader, w1 = plan.component("mixtral-8x7b-0"), plan.component("mixtral-8x7b-0-1")
    assert (leader.unit, w1.unit) == ("mixtral-8x7b-0", "mixtral-8x7b-0-1")
    assert leader.restart == w1.restart == RestartPolicy.ALWAYS
    assert w1.after_leader
    assert not leader.after_leader
