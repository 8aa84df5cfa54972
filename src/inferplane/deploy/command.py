"""`inferplane render PATH --target gke|kubernetes [...] [-o DIR | -]`: Kubernetes manifests for a deployment.

The same directory `inferplane up` runs becomes an ordered manifest set for `kubectl apply -f`. Before anything is
written, every object is validated against the Kubernetes and CRD schemas found here and cross-checked (selectors
against pod labels, target ports against container ports, the EPP Service against the pool's endpointPickerRef);
a failure is an error, never a file that breaks in the cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inferplane import __version__
from inferplane.deploy.crosscheck import crosscheck
from inferplane.deploy.plan import RenderOptions
from inferplane.deploy.render import Rendered, render, to_stream, write_dir
from inferplane.deploy.source import build_plan, load_for_render
from inferplane.deploy.validate import SCHEMAS_ENV, ManifestValidator, find_schemas_dir
from inferplane.errors import ConfigError, UsageError

DEFAULT_IMAGE = f"inferplane:{__version__}"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a deployment directory (values files + manifests/) or one YAML file")
    parser.add_argument("--target", choices=("gke", "kubernetes"), required=True, help="the kind of cluster")
    parser.add_argument(
        "--gateway-class",
        help="GatewayClass of the Gateway (GKE default: gke-l7-regional-external-managed; other clusters: the "
        "class the deployment names, or e.g. istio, kgateway, eg)",
    )
    parser.add_argument("--accelerator", choices=("tpu", "gpu"), help="use the deployment's variant for it")
    parser.add_argument(
        "--backend",
        choices=("vllm", "sim"),
        default="vllm",
        help="model servers: vLLM on accelerators (default), or `inferplane sim` on CPU for clusters without them",
    )
    parser.add_argument("--namespace", help="namespace of every object (default: the deployment's)")
    parser.add_argument(
        "--image", default=DEFAULT_IMAGE, help=f"the inferplane image for the EPP and BBR (default {DEFAULT_IMAGE})"
    )
    parser.add_argument("-o", "--output", default="-", help="a directory (one file per object) or - for stdout")


def render_path(path: Path, options: RenderOptions) -> Rendered:
    """Load, plan, render, validate and cross-check; raises ConfigError listing every problem found."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    deployment = load_for_render(path, options.accelerator)
    rendered = render(build_plan(deployment, options, path.name), options)
    schemas = find_schemas_dir()
    validator = ManifestValidator(schemas)
    problems = [str(p) for p in validator.validate_all(rendered.manifests)]
    problems += crosscheck(rendered.manifests)
    if problems:
        raise ConfigError(
            "the rendered manifests would not work:\n  " + "\n  ".join(problems),
            hint="fix the deployment where a problem names your input; otherwise this is an inferplane bug",
        )
    unchecked = sorted({m["kind"] for m in rendered.manifests if not validator.covered_by(m)})
    if unchecked:
        rendered.warnings.append(
            f"not validated, no schema found for: {', '.join(unchecked)} (set {SCHEMAS_ENV} to a folder with the "
            "Gateway API, InferencePool and LeaderWorkerSet CRDs; install kubernetes-validate for built-in kinds)"
        )
    return rendered


def run(args: argparse.Namespace) -> int:
    options = RenderOptions(
        target=args.target,
        image=args.image,
        gateway_class=args.gateway_class,
        accelerator=args.accelerator,
        namespace=args.namespace,
        backend=args.backend,
    )
    source = str(args.path)
    rendered = render_path(Path(args.path), options)
    if args.output == "-":
        sys.stdout.write(to_stream(rendered, source, options))
    else:
        written = write_dir(rendered, Path(args.output), source, options)
        print(f"wrote {len(written)} manifests to {args.output} (apply with: kubectl apply -f {args.output})")
    for w in rendered.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if rendered.secrets:
        print(f"note: create these Secrets first: {', '.join(rendered.secrets)}", file=sys.stderr)
    return 0
