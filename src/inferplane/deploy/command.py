"""`inferplane render PATH --target gke|kubernetes [...] [--format yaml|helm] [-o DIR | -]`: Kubernetes manifests
for a deployment.

`--format yaml` (default) writes the objects (one stream, or one file per object plus a kustomize base under
`-o DIR`); `--format helm` writes a chart into DIR. `--gie-version` names the GIE release of the cluster's CRDs.

The same directory `inferplane up` runs becomes an ordered manifest set for `kubectl apply -f`. Before anything is
written, every object is validated against the Kubernetes and CRD schemas found here and cross-checked (selectors
against pod labels, target ports against container ports, the EPP Service against the pool's endpointPickerRef);
a failure is an error, never a file that breaks in the cluster.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from inferplane import __version__
from inferplane.api import gie_versions
from inferplane.api.command import resolve_path
from inferplane.deploy import helm
from inferplane.deploy.crosscheck import crosscheck
from inferplane.deploy.options import check_image, check_namespace, check_output_dir
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
    parser.add_argument(
        "--gie-version",
        default=gie_versions.DEFAULT,
        help=f"the GIE release of the cluster's CRDs ({', '.join(gie_versions.SUPPORTED)}; default "
        f"{gie_versions.DEFAULT}): fields it lacks are not written",
    )
    parser.add_argument(
        "--format",
        choices=("yaml", "helm"),
        default="yaml",
        help="yaml: the objects (default); helm: a chart with values for image, namespace, replicas, accelerators "
        "(needs -o DIR)",
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


def _write(rendered: Rendered, output: str, source: str, options: RenderOptions) -> None:
    if output == "-":
        sys.stdout.write(to_stream(rendered, source, options))
        return
    try:
        written = write_dir(rendered, Path(output), source, options)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != output else ""
        raise UsageError(
            f"-o {output}: cannot write there: {exc.strerror or exc}{where}",
            hint="pass a directory you can write to, or - for stdout",
        ) from None
    print(f"wrote {len(written)} manifests to {output} (apply with: kubectl apply -f {output})")


def _images(node: object) -> Iterator[str]:
    """Every container image named anywhere in a manifest (Deployments, LeaderWorkerSet templates)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield value
            else:
                yield from _images(value)
    elif isinstance(node, list):
        for item in node:
            yield from _images(item)


def _uses_image(rendered: Rendered, image: str) -> bool:
    return any(found == image for m in rendered.manifests for found in _images(m))


def run(args: argparse.Namespace) -> int:
    # Option values first: one clear message each, before anything is loaded, rendered or written.
    check_namespace(args.namespace)
    check_image(args.image)
    check_output_dir(args.output)
    fmt = getattr(args, "format", "yaml")
    if fmt == "helm" and args.output == "-":
        raise UsageError("--format helm writes a chart, a directory", hint="pass -o DIR")
    gie_version = gie_versions.normalise(getattr(args, "gie_version", gie_versions.DEFAULT))
    options = RenderOptions(
        target=args.target,
        image=args.image,
        gateway_class=args.gateway_class,
        accelerator=args.accelerator,
        # A chart is rendered in a placeholder namespace that becomes `{{ include "inferplane.namespace" . }}`.
        namespace=helm.NAMESPACE_PLACEHOLDER if fmt == "helm" else args.namespace,
        backend=args.backend,
        gie_version=gie_version,
    )
    path = resolve_path(args.path)  # a path, or a pattern name as `inferplane up` takes it
    source = str(path)
    rendered = render_path(path, options)
    if fmt == "helm":
        written = helm.write_chart(rendered, args.image, args.namespace, Path(args.output), path.name)
        print(f"wrote a chart of {len(written) - 3} objects to {args.output} (helm install NAME {args.output} -n NS)")
    else:
        _write(rendered, args.output, source, options)
    for w in rendered.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if rendered.secrets:
        print(f"note: create these Secrets first: {', '.join(rendered.secrets)}", file=sys.stderr)
    if args.image == DEFAULT_IMAGE and _uses_image(rendered, DEFAULT_IMAGE):
        # The default is the tag `docker build` gives locally; no registry serves it, so pods would not pull it.
        print(
            f"note: the endpoint picker (and body-based router) use image {DEFAULT_IMAGE}, a local tag: build and "
            f"push it (docker build -t REGISTRY/inferplane:{__version__} . && docker push ...), then render with "
            f"--image REGISTRY/inferplane:{__version__}",
            file=sys.stderr,
        )
    return 0
