"""Routing policies on the simulator's engine in virtual time: a fast, noise-free probe for tuning, not the headline.

    .venv/bin/python benchmarks/bench_routing_virtual.py [--rates 4,6,8] [--seeds 0,1,2] [--configs prefix,...]

Three `inferplane.sim.engine.Engine`s (H100 8B roofline, the KV pool of `--gpu-memory-utilization 0.28`: 2,985
blocks of 16 tokens each) are driven back to back in virtual time (no sockets, no sleeps), under the headline's
shared-prefix workload (30 groups x 5 prompts, 2,000 + 300 prompt tokens, 200 output tokens, prompts in a shuffled
cycle) with Poisson arrivals: a warm-up at 2 req/s, then one stage at each rate. Times and rates are reported at
time scale 10, like the headline, so the numbers line up with `bench_routing_headline.py`.

Routers: inferplane's EndpointPickerConfigs (`src/inferplane/bench/schedulers/*.yaml`, the real scheduler and
plugins, fed the engine's queue length as a fresh scrape), and an emulation of sglang-router's / vllm-router's
`cache_aware` policy (per-worker prefix match over the request text, least-loaded when the in-flight counts differ
by more than `abs` and by 1.5x, otherwise the best match when its ratio exceeds the cache threshold, otherwise the
worker with the smallest tree). The emulation is a model of the peers, not the peers: the headline runs the real
ones. What the probe cannot show: HTTP and Envoy latency, scrape staleness, the machine's noise.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
from dataclasses import dataclass, field

import yaml

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.bench.compare import SCHEDULERS_DIR
from inferplane.epp.framework.types import Endpoint, EndpointKey, LLMRequest, LLMRequestBody, Metrics
from inferplane.epp.intree import register_in_tree_plugins
from inferplane.epp.scheduling import build_scheduler
from inferplane.sim.engine import Engine, Sequence
from inferplane.sim.kvblocks import BlockManager
from inferplane.sim.latency import RooflineModel
from inferplane.sim.profiles import load_profile

register_in_tree_plugins()  # this script is a composition root: the kernel's registry imports no plugin

TIME_SCALE = 10.0
# `inferplane up` does not send response phases to the picker today (gateway PoolBinding.response_phases is False):
# plugins see the end of a request (the ext_proc stream closes) but no streamed chunk, so no first token.
RESPONSE_PHASES = False
NUM_BLOCKS = 2985
BLOCK = 16
GROUPS, PER_GROUP, SYS, QUESTION, OUTPUT = 30, 5, 2000, 300, 200


@dataclass
class Prompt:
    text: str
    tokens: list[int]


def prompts() -> list[Prompt]:
    out = []
    for g in range(GROUPS):
        sys_tokens = [1_000_000 * (g + 1) + i for i in range(SYS)]
        sys_text = "".join(f"{g:02d}{i % 100:02d}" for i in range(SYS))  # 4 characters a token
        for p in range(PER_GROUP):
            q_tokens = [50_000_000 + 1000 * (g * PER_GROUP + p) + i for i in range(QUESTION)]
            q_text = "".join(f"q{(g * PER_GROUP + p) % 1000:03d}" for _ in range(QUESTION))
            out.append(Prompt(sys_text + q_text, sys_tokens + q_tokens))
    return out


class Peer:
    """sglang-router / vllm-router `cache_aware`, as their docs and code describe it (approximate radix trees)."""

    def __init__(self, n: int, abs_threshold: int, rel_threshold: float = 1.5, cache_threshold: float = 0.5) -> None:
        self.trees: list[set[str]] = [set() for _ in range(n)]  # prefixes at 64-char granularity
        self.sizes = [0] * n
        self.load = [0] * n
        self.abs, self.rel, self.cache = abs_threshold, rel_threshold, cache_threshold
        self.rng = random.Random(0)

    def pick(self, text: str) -> int:
        lo, hi = min(self.load), max(self.load)
        if hi - lo > self.abs and hi > lo * self.rel:
            return self.load.index(lo)
        best, best_len = 0, -1
        for w, tree in enumerate(self.trees):
            n = 0
            for end in range(64, len(text) + 64, 64):
                if text[:end] in tree:
                    n = min(end, len(text))
                else:
                    break
            if n > best_len:
                best, best_len = w, n
        if best_len / len(text) > self.cache:
            return best
        return self.sizes.index(min(self.sizes))

    def routed(self, w: int, text: str) -> None:
        for end in range(64, len(text) + 64, 64):
            key = text[:end]
            if key not in self.trees[w]:
                self.trees[w].add(key)
                self.sizes[w] += min(64, len(text) - end + 64)
        self.load[w] += 1

    def done(self, w: int) -> None:
        self.load[w] -= 1


def inline_config(spec: str) -> dict[str, object]:
    """`TYPE:key=value,...`: one scorer with those parameters and `max-score-picker`."""
    type_, _, rest = spec.partition(":")
    params = {k: yaml.safe_load(v) for k, v in (kv.split("=") for kv in rest.split(",") if kv)}
    return {
        "plugins": [{"type": type_, "parameters": params}, {"type": "max-score-picker"}],
        "schedulingProfiles": [
            {"name": "default", "plugins": [{"pluginRef": type_}, {"pluginRef": "max-score-picker"}]}
        ],
    }


class Inferplane:
    def __init__(self, spec: str, eps: list[Endpoint], clock: list[float]) -> None:
        inline = ":" in spec
        data = inline_config(spec) if inline else yaml.safe_load((SCHEDULERS_DIR / f"{spec}.yaml").read_text())
        cfg = EndpointPickerConfig.model_validate(data)
        self.s = build_scheduler(cfg, rng=random.Random(0), clock=lambda: clock[0])
        self.eps = eps
        self.reqs: dict[str, LLMRequest] = {}

    def pick(self, rid: str, text: str) -> int:
        req = LLMRequest(rid, "m", LLMRequestBody("completions", prompt=text, raw={"prompt": text}))
        self.reqs[rid] = req
        self.s.prepare_request_data(req, self.eps)
        result = self.s.schedule(req, self.eps)
        self.s.pre_request(req, result)
        self.s.flush_deferred()
        ep = result.primary.target_endpoints[0]
        ep.in_flight_requests += 1
        return self.eps.index(ep)

    def first_token(self, rid: str, w: int) -> None:
        if RESPONSE_PHASES:
            self.s.response_streaming(self.reqs[rid], self.eps[w])

    def done(self, rid: str, w: int) -> None:
        self.eps[w].in_flight_requests -= 1
        self.s.response_complete(self.reqs.pop(rid), self.eps[w])


@dataclass
class Record:
    arrival: float
    stage: str
    worker: int
    ttft: float = 0.0
    e2e: float = 0.0
    cached: int = 0


@dataclass(order=True)
class Event:
    time: float
    seq: int
    kind: str = field(compare=False)
    data: object = field(compare=False)


def run(
    router_name: str, rates: list[float], seed: int, duration: float, warmup: float, zipf: float = 0.0
) -> dict[str, dict[str, float]]:
    profile = load_profile("h100-llama-8b")
    clock = [0.0]
    engines = [
        Engine(BlockManager(NUM_BLOCKS, BLOCK, record_events=False), RooflineModel(profile), clock=lambda: clock[0])
        for _ in range(3)
    ]
    eps = [
        Endpoint(
            EndpointKey("127.0.0.1", 9000 + i), metrics=Metrics(cache_block_size=BLOCK, cache_num_gpu_blocks=NUM_BLOCKS)
        )
        for i in range(3)
    ]
    router: Peer | Inferplane
    if router_name.startswith("peer"):
        router = Peer(3, abs_threshold=int(router_name.split("-")[1]))
    else:
        router = Inferplane(router_name, eps, clock)
    lat = RooflineModel(profile)
    ps = prompts()
    rng = random.Random(seed)
    order: list[int] = []
    weights = [1.0 / (g + 1) ** zipf for g in range(GROUPS)]
    events: list[Event] = []
    n = 0

    def push(t: float, kind: str, data: object) -> None:
        nonlocal n
        n += 1
        heapq.heappush(events, Event(t, n, kind, data))

    # arrivals, real H100 seconds (virtual): warm-up then stages
    t = 0.0
    stages = [("warmup", 2.0, warmup), *((f"{r:g}/s", r, duration) for r in rates)]
    for name, rate, length in stages:
        end = t + length / TIME_SCALE
        while True:
            t += rng.expovariate(rate * TIME_SCALE)
            if t >= end:
                t = end
                break
            if zipf > 0:  # skewed popularity: group g with probability ∝ 1/(g+1)^s, any of its prompts
                g = rng.choices(range(GROUPS), weights)[0]
                push(t, "arrive", (name, g * PER_GROUP + rng.randrange(PER_GROUP)))
                continue
            if not order:
                order = list(range(len(ps)))
                rng.shuffle(order)
            push(t, "arrive", (name, order.pop()))
    records: dict[str, Record] = {}
    busy = [False] * 3
    steps: list[object] = [None] * 3

    def kick(w: int) -> None:
        if busy[w]:
            return
        step = engines[w].schedule()
        if step is None:
            return
        busy[w] = True
        steps[w] = step
        push(clock[0] + step.duration, "step", w)

    rid_n = 0
    while events:
        ev = heapq.heappop(events)
        clock[0] = ev.time
        if ev.kind == "arrive":
            stage, i = ev.data  # type: ignore[misc]
            rid_n += 1
            rid = f"r{rid_n}"
            for w, e in enumerate(engines):
                eps[w].metrics.waiting_queue_size = len(e.waiting)
                eps[w].metrics.running_requests_size = len(e.running)
                eps[w].metrics.kv_cache_usage_percent = e.blocks.usage
            if isinstance(router, Peer):
                w = router.pick(ps[i].text)
                router.routed(w, ps[i].text)
            else:
                w = router.pick(rid, ps[i].text)
            records[rid] = Record(ev.time, stage, w)
            seq = Sequence(rid, ps[i].tokens, [7] * OUTPUT, OUTPUT, "length", "m")
            push(ev.time + lat.request_overhead(len(ps[i].tokens)), "enqueue", (w, seq))
        elif ev.kind == "enqueue":
            w, seq = ev.data  # type: ignore[misc]
            engines[w].add(seq)
            kick(w)
        else:
            w = ev.data  # type: ignore[assignment]
            out = engines[w].finish_step(steps[w], ev.time)  # type: ignore[arg-type]
            busy[w] = False
            for seq in out.emitted:
                if seq.num_output == 1:
                    rec = records[seq.request_id]
                    rec.ttft = ev.time - rec.arrival
                    rec.cached = seq.num_cached
                    if not isinstance(router, Peer):
                        router.first_token(seq.request_id, w)
            for seq in out.finished:
                rec = records[seq.request_id]
                rec.e2e = ev.time - rec.arrival
                if isinstance(router, Peer):
                    router.done(w)
                else:
                    router.done(seq.request_id, w)
            kick(w)
    out: dict[str, dict[str, float]] = {}
    for name, _, _ in stages[1:]:
        rs = [r for r in records.values() if r.stage == name]
        ttft = sorted(r.ttft * TIME_SCALE for r in rs)
        e2e = sorted(r.e2e * TIME_SCALE for r in rs)
        span = max(r.arrival + r.e2e for r in rs) - min(r.arrival for r in rs)
        split = [sum(1 for r in rs if r.worker == w) for w in range(3)]
        out[name] = {
            "ttft_p90": ttft[int(0.9 * len(ttft))],
            "ttft_p99": ttft[int(0.99 * len(ttft))],
            "ttft_mean": statistics.fmean(ttft),
            "e2e_p90": e2e[int(0.9 * len(e2e))],
            "tok_s": len(rs) * OUTPUT / (span * TIME_SCALE),
            "hit": sum(r.cached for r in rs) / (len(rs) * (SYS + QUESTION)),
            "split": "/".join(map(str, split)),  # type: ignore[dict-item]
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--configs",
        default="peer-64,peer-32,prefix,prefix-balanced,predicted-ttft",
        help="names under bench/schedulers, peer-ABS, or TYPE:key=value,... (configs separated by ;)",
    )
    ap.add_argument("--rates", default="4,6,8")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--warmup", type=float, default=20.0)
    ap.add_argument("--zipf", type=float, default=0.0, help="skewed group popularity (bench_routing_skewed: 1.1)")
    ap.add_argument(
        "--response-phases", action="store_true", help="tell the picker about first tokens (response_streaming)"
    )
    a = ap.parse_args()
    global RESPONSE_PHASES
    RESPONSE_PHASES = a.response_phases
    rates = [float(r) for r in a.rates.split(",")]
    configs = a.configs.split(";")
    seeds = [int(x) for x in a.seeds.split(",")]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for seed in seeds:
        for cfg in configs:
            res = run(cfg, rates, seed, a.duration, a.warmup, a.zipf)
            for stage, m in res.items():
                results.setdefault((cfg, stage), []).append(m)
                print(
                    f"seed {seed} {cfg:>18} {stage:>5}: TTFT p90 {m['ttft_p90']:6.3f} p99 {m['ttft_p99']:6.3f} "
                    f"mean {m['ttft_mean']:6.3f}  E2E p90 {m['e2e_p90']:6.2f}  tok/s {m['tok_s']:5.0f}  "
                    f"hit {m['hit']:.3f}  split {m['split']}",
                    flush=True,
                )
    # Markdown: the mean over the seeds and, in brackets, the range
    stages = list(dict.fromkeys(stage for _, stage in results))
    print(f"\n| configuration ({len(seeds)} seeds) | " + " | ".join(f"{st} TTFT p90 / tok/s" for st in stages) + " |")
    print("|---|" + "---|" * len(stages))
    for cfg in configs:
        cells = []
        for stage in stages:
            ms = results[(cfg, stage)]
            t = [m["ttft_p90"] for m in ms]
            k = [m["tok_s"] for m in ms]
            cells.append(
                f"{statistics.fmean(t):.3f} s ({min(t):.3f}–{max(t):.3f}) / {statistics.fmean(k):.0f} "
                f"({min(k):.0f}–{max(k):.0f})"
            )
        print(f"| {cfg} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
