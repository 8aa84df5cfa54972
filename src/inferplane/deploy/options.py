"""Checks of `inferplane render`'s option values, done before anything is loaded or written.

A bad value gets one message naming the option, instead of surfacing later as a schema error per rendered object
(a namespace) or as an ImagePullBackOff in the cluster (an image reference).
"""

from __future__ import annotations

import re
from pathlib import Path

from inferplane.errors import UsageError

# RFC 1123 label: what Kubernetes requires of a namespace name (k8s.io/apimachinery IsDNS1123Label).
_RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAMESPACE_MAX = 63

# The image reference grammar of github.com/distribution/reference (regexp.go): [domain/]path[:tag][@digest].
# Written out here because no dependency of inferplane parses image references; the grammar is small and fixed.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?$")
NAME_MAX = 255


def check_namespace(namespace: str | None) -> None:
    if namespace is None:
        return
    if len(namespace) > NAMESPACE_MAX or not _RFC1123_LABEL.match(namespace):
        raise UsageError(
            f"--namespace: {namespace!r} is not a valid namespace name",
            hint=f"a namespace is an RFC 1123 label: at most {NAMESPACE_MAX} lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. llm-serving)",
        )


def check_image(image: str) -> None:
    m = _REFERENCE.match(image)
    if m is None or len(m.group("name")) > NAME_MAX:
        raise UsageError(
            f"--image: {image!r} is not a valid image reference",
            hint="write [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST] with a lower-case repository, "
            "e.g. us-docker.pkg.dev/my-project/repo/inferplane:0.1.0",
        )


def check_output_dir(output: str) -> None:
    """`-o DIR` must be a directory or a path that can become one (`-` is stdout)."""
    if output == "-":
        return
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise UsageError(f"-o {output}: is a file, expected a directory (or - for stdout)")
    parent = next((p for p in (path, *path.parents) if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(f"-o {output}: {parent} is a file, so no directory can be made there")
