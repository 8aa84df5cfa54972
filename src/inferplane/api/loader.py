"""`load_deployment(path)`: a deployment directory (or one file) → a checked `Deployment`.

A directory holds values files (`*.yaml` at its top level) and Kubernetes manifests (`manifests/**/*.yaml`), each
possibly with several YAML documents. Every problem of every file is collected before anything is raised, so one run
reports them all; warnings are returned on the Deployment.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from inferplane.api.crosscheck import cross_check
from inferplane.api.deployment import Deployment
from inferplane.api.diagnostics import Collector, Diagnostic, DiagnosticsError, did_you_mean
from inferplane.api.epp_config import EndpointPickerConfig, default_epp_config
from inferplane.api.kinds import LoadContext, dispatch, release_name
from inferplane.api.pool import EPP_CONFIG_ANNOTATION, InferencePool
from inferplane.api.positions import parse_yaml
from inferplane.errors import UsageError

YAML_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 10 * 1024 * 1024


def discover(root: Path) -> list[Path]:
    """Values files at the top of a deployment directory, then every manifest under manifests/ (sorted)."""
    if root.is_file():
        return [root]
    top = sorted(p for p in root.iterdir() if p.is_file() and p.suffix in YAML_SUFFIXES)
    manifests = root / "manifests"
    nested = (
        sorted(p for p in manifests.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
        if manifests.is_dir()
        else []
    )
    return [*top, *nested]


def load_deployment(path: str | os.PathLike[str], *, check_references: bool = True) -> Deployment:
    """Load, validate and cross-check a deployment. Raises DiagnosticsError with every error found.

    `check_references=False` skips the cross-reference checks (for loading one file of a larger deployment)."""
    root = Path(path)
    if not root.exists():
        raise UsageError(f"{path}: no such file or directory")
    if not (root.is_dir() or root.is_file()):
        raise UsageError(f"{path}: not a regular file or a directory")
    base = root if root.is_dir() else root.parent
    dep = Deployment(root=base, partial=root.is_file())
    diags = Collector()
    ctx = LoadContext(dep=dep, diags=diags)
    try:
        files = discover(root)
    except OSError as exc:
        raise DiagnosticsError(
            [Diagnostic("error", str(root), 1, 1, "", f"cannot list: {exc.strerror or exc}")]
        ) from None
    if not files:
        raise DiagnosticsError(
            [
                Diagnostic(
                    "error",
                    str(root),
                    1,
                    1,
                    "",
                    "no YAML files here: expected values files (*.yaml) at the "
                    "top level and Kubernetes manifests under manifests/",
                )
            ]
        )
    for file in files:
        _load_file(ctx, file, base, display=str(file))
    dep.standalone_epp_configs = ctx.epp_files
    _bind_epp_configs(ctx)
    if check_references:
        diags.extend(cross_check(dep))
    diags.raise_if_errors()
    dep.warnings = diags.warnings
    return dep


def _load_file(ctx: LoadContext, file: Path, base: Path, display: str) -> None:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        ctx.diags.add(Diagnostic("error", display, 1, 1, "", f"cannot read file: {exc.strerror or exc}"))
        return
    if len(raw) > MAX_FILE_BYTES:
        ctx.diags.add(Diagnostic("error", display, 1, 1, "", f"file too large ({len(raw)} bytes)"))
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        ctx.diags.add(Diagnostic("error", display, line, 1, "", f"not UTF-8 text (byte {exc.start})"))
        return
    ctx.rel = file.relative_to(base).as_posix() if file.is_relative_to(base) else file.name
    ctx.release = release_name(ctx.rel)
    docs, problems = parse_yaml(text, display)
    ctx.diags.extend(problems)
    if any(p.severity == "error" for p in problems):
        ctx.dep.unreadable = ctx.dep.incomplete = True
    for doc in docs:
        try:
            dispatch(ctx, doc)
        except RecursionError:
            ctx.diags.add(doc.diag((), "document nested too deeply"))


def _bind_epp_configs(ctx: LoadContext) -> None:
    """Pick each pool's EndpointPickerConfig: its annotation, its chart values, the one standalone file, or the
    upstream default."""
    dep = ctx.dep
    standalone = [(rel, cfg) for rel, cfgs in ctx.epp_files.items() for cfg in cfgs]
    for pool in dep.inference_pools:
        ref = pool.epp_config_ref
        key = (pool.namespace, pool.name)
        if ref is not None:
            found = _by_reference(ctx, pool, ref)
            if found is not None:
                dep.epp_configs[pool.name], dep.epp_config_origins[pool.name] = found
        elif key in ctx.values_epp:
            dep.epp_configs[pool.name], dep.epp_config_origins[pool.name] = ctx.values_epp[key]
        elif len(standalone) == 1:
            rel, cfg = standalone[0]
            dep.epp_configs[pool.name], dep.epp_config_origins[pool.name] = cfg, rel
        elif len(standalone) > 1:
            source = dep.source("InferencePool", pool.name, pool.namespace)
            if source is not None:
                files = ", ".join(sorted({rel for rel, _ in standalone}))
                ctx.diags.add(
                    source.diag(
                        ("metadata", "name"),
                        f"several EndpointPickerConfig documents ({files}) and no "
                        f"{EPP_CONFIG_ANNOTATION} annotation to choose one for this pool",
                        hint=f"add metadata.annotations: {{{EPP_CONFIG_ANNOTATION}: <file>}}",
                    )
                )
        else:
            dep.epp_configs[pool.name] = default_epp_config()
            dep.epp_config_origins[pool.name] = "upstream default"


def _matching(names: Iterable[str], want: str) -> list[str]:
    """Files named by an annotation: the path relative to the deployment root, else a unique file name."""
    names = list(names)
    return [rel for rel in names if rel == want] or [rel for rel in names if PurePosixPath(rel).name == want]


def _by_reference(ctx: LoadContext, pool: InferencePool, ref: str) -> tuple[EndpointPickerConfig, str] | None:
    want = PurePosixPath(ref.strip()).as_posix().removeprefix("./")
    files = ctx.epp_files
    matches = _matching(files, want)
    source = ctx.dep.source("InferencePool", pool.name, pool.namespace)
    path: tuple[str | int, ...] = ("metadata", "annotations", EPP_CONFIG_ANNOTATION)
    if len(matches) == 1 and len(files[matches[0]]) == 1:
        return files[matches[0]][0], matches[0]
    if source is None:
        return None
    if not matches and _matching(ctx.epp_failed, want):
        return None  # the file holds a config that failed validation; its own errors say why
    if not matches and ctx.dep.partial:
        # One file validated on its own: the annotation names a path relative to the deployment directory, which a
        # lone file does not determine, and the config there is not part of what is validated. Like references to
        # other kinds (crosscheck), it is checked when the whole directory is validated.
        ctx.dep.epp_config_origins[pool.name] = f"{ref} (not loaded: one file validated)"
        return None
    if not matches:
        known = sorted(files)
        hint = did_you_mean(want, known) or (
            f"EndpointPickerConfig files here: {', '.join(known)}"
            if known
            else "no file here holds an EndpointPickerConfig (kind: EndpointPickerConfig)"
        )
        if (ctx.dep.root / want).is_file():
            message = f"names {ref!r}, which holds no EndpointPickerConfig"
        else:
            message = f"names {ref!r}: no such file (the path is relative to the deployment directory)"
        ctx.diags.add(source.diag(path, message, hint=hint))
    else:
        ctx.diags.add(
            source.diag(
                path,
                f"{ref!r} is ambiguous: it matches {len(matches)} files or holds several "
                "EndpointPickerConfig documents",
                hint="give the path relative to the deployment directory, one config per file",
            )
        )
    return None
