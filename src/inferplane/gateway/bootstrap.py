"""Writing a gateway configuration directory: the bootstrap Envoy starts from and the initial EDS files."""

from __future__ import annotations

from pathlib import Path

from inferplane.gateway.eds import EDS_DIR, write_endpoints
from inferplane.gateway.envoy_config import EnvoyOptions, build_envoy, dump_yaml
from inferplane.gateway.plan import GatewayPlan

BOOTSTRAP_FILE = "envoy.yaml"


def write_bootstrap(
    config_dir: Path, plan: GatewayPlan, *, admin_port: int = 0, options: EnvoyOptions | None = None
) -> Path:
    """Generate the configuration for `plan` into `config_dir` and return the bootstrap path.

    The EDS files are written first, so Envoy finds every cluster's endpoints when it starts. `admin_port=0` lets
    Envoy choose; `EnvoyProcess` reads the chosen address back from `--admin-address-path`."""
    config_dir = Path(config_dir)
    (config_dir / EDS_DIR).mkdir(parents=True, exist_ok=True)
    config = build_envoy(plan, admin_port=admin_port, config_dir=config_dir, options=options)
    for cluster, endpoints in config.endpoints.items():
        write_endpoints(config_dir, cluster, endpoints)
    path = config_dir / BOOTSTRAP_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(dump_yaml(config.bootstrap))
    tmp.replace(path)
    return path
