"""A LeaderWorkerSet worker for the simulator backend.

In a real multi-node vLLM group the workers hold model shards and join the leader (a Ray worker joining the head,
or `vllm serve --headless` ranks joining the leader's data-parallel address); they serve no HTTP API. The simulated
leader computes the whole model, so a worker only has to reproduce what the group's lifecycle depends on: it joins
the leader at LWS_LEADER_ADDRESS (readiness `GET /health` answers 200 once it has), and it exits when the leader
stays unreachable, as a worker that lost its head does. Standard library only, so a group starts fast.
"""

from __future__ import annotations

import argparse
import http.server
import os
import socket
import sys
import threading
import time


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="inferplane.runtime.lws_worker", description=__doc__)
    p.add_argument("--leader", required=True, help="host:port of the group leader's server")
    p.add_argument("--port", type=int, required=True, help="port of this worker's health endpoint")
    p.add_argument("--name", default="worker")
    p.add_argument("--lost-after", type=float, default=5.0, help="exit after the leader is gone this long (s)")
    args = p.parse_args(argv)
    host, _, port_text = args.leader.rpartition(":")
    leader_port = int(port_text)
    joined = threading.Event()

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/health" and joined.is_set()
            body = b'{"status":"ok"}' if ok else b'{"status":"waiting for leader"}'
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    group = os.environ.get("LWS_GROUP_SIZE", "?")
    index = os.environ.get("LWS_WORKER_INDEX", "?")
    print(f"{args.name}: worker {index} of a group of {group}, joining leader {args.leader}", flush=True)
    lost_since: float | None = None
    while True:
        if _reachable(host, leader_port):
            if not joined.is_set():
                print(f"{args.name}: joined leader {args.leader}", flush=True)
                joined.set()
            lost_since = None
        elif joined.is_set():
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since > args.lost_after:
                print(f"{args.name}: leader {args.leader} lost for {args.lost_after:.0f}s; exiting", flush=True)
                return 1
        time.sleep(0.2 if not joined.is_set() else 1.0)


if __name__ == "__main__":
    sys.exit(main())
