"""`inferplane bbr --port 0`: the one start-up line says the scheme and which ports were bound, and they serve."""

from __future__ import annotations

import re
from pathlib import Path

from inferplane.net import wait_until
from tests.integration.bbr.bbr_support import MODELS_YAML, serving
from tests.support.procs import INFERPLANE, Proc

BANNER = re.compile(r"inferplane bbr: ext_proc grpc://127\.0\.0\.1:(\d+) health (\d+) models \d+")


def test_port_zero_prints_the_bound_ports(tmp_path: Path, procs: list[Proc]) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_YAML)
    proc = Proc([*INFERPLANE, "bbr", "--port", "0", "--health-port", "0", "--bind", "127.0.0.1",
                 "--models-file", str(models)])  # fmt: skip
    procs.append(proc)
    proc.wait_ready(lambda: BANNER.search(proc.output()) is not None, timeout=30, what="the bbr banner")
    m = BANNER.search(proc.output())
    assert m is not None
    port, health_port = int(m.group(1)), int(m.group(2))
    assert 0 not in (port, health_port)
    assert port != health_port
    # both printed ports are the live servers: the ext_proc port answers health checks too
    wait_until(lambda: serving(health_port) and serving(port), 10, what="bbr serving on the printed ports")
    assert len(proc.output().strip().splitlines()) == 1, proc.output()
