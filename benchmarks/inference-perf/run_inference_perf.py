"""Run kubernetes-sigs' inference-perf against a local inferplane deployment and check it completes without errors.

    .venv/bin/python benchmarks/inference-perf/run_inference_perf.py [--deployment deployments/pattern3-caching]
        [--python /root/.pyenv/versions/3.12.1/bin/python] [--config benchmarks/inference-perf/config.yaml]

This is a documented benchmark rather than a CI test: inference-perf 0.7 needs Python >= 3.12 and installs about
790 MB (torch-free, but transformers and friends), too heavy for `make test`. The script

1. creates benchmarks/inference-perf/.venv with that interpreter and installs inference-perf==0.7.0 (once);
2. builds an offline byte-level BPE tokenizer directory (build_tokenizer.py);
3. brings the deployment up on a free port with the runtime's Python API (simulated replicas);
4. runs `inference-perf --config_file` with config.yaml, pointed at the gateway;
5. reads summary_lifecycle_metrics.json and fails unless every request succeeded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV = HERE / ".venv"
VERSION = "0.7.0"


def ensure_venv(python: str) -> Path:
    exe = VENV / "bin" / "inference-perf"
    if exe.exists():
        return VENV / "bin"
    subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", f"inference-perf=={VERSION}"], check=True)
    return VENV / "bin"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployment", default=str(REPO / "deployments" / "pattern3-caching"))
    parser.add_argument("--python", default="/root/.pyenv/versions/3.12.1/bin/python")
    parser.add_argument("--config", type=Path, default=HERE / "config.yaml")
    parser.add_argument("--time-scale", type=float, default=None, help="simulator time scale (faster: < 1)")
    args = parser.parse_args()

    from inferplane.runtime.runtime import run_deployment

    bin_dir = ensure_venv(args.python)
    with tempfile.TemporaryDirectory(prefix="inference-perf-") as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([str(bin_dir / "python"), str(HERE / "build_tokenizer.py"), str(tmp / "tokenizer")], check=True)
        options = {"port": 0}
        if args.time_scale:
            options["time_scale"] = args.time_scale
        with run_deployment(args.deployment, state_dir=str(tmp / "state"), **options) as rt:
            config = yaml.safe_load(args.config.read_text())
            config["server"]["base_url"] = rt.base_url
            config["server"]["model_name"] = rt.running_plan.models[0]
            config["tokenizer"]["pretrained_model_name_or_path"] = str(tmp / "tokenizer")
            config["storage"] = {"local_storage": {"path": str(tmp / "reports")}}
            (tmp / "config.yaml").write_text(yaml.safe_dump(config))
            subprocess.run([str(bin_dir / "inference-perf"), "--config_file", str(tmp / "config.yaml")], check=True)
        summaries = sorted((tmp / "reports").rglob("summary_lifecycle_metrics.json"))
        if not summaries:
            print("inference-perf wrote no summary_lifecycle_metrics.json", file=sys.stderr)
            return 1
        summary = json.loads(summaries[-1].read_text())
        ok = summary.get("successes", {}).get("count", 0)
        failed = summary.get("failures", {}).get("count", 0)
        print(
            json.dumps(
                {
                    "successes": ok,
                    "failures": failed,
                    "latency": summary.get("successes", {}).get("latency", {}),
                    "throughput": summary.get("successes", {}).get("throughput", {}),
                },
                indent=1,
            )
        )
        return 0 if ok > 0 and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
