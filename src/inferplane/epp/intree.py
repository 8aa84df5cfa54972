"""The plugins that ship with inferplane, registered on request.

The kernel's registry (`epp.framework.registry`) imports no plugin; each composition root (the `epp` command,
`validate`, the benchmarks and virtual-time harnesses, the tests) calls `register_in_tree_plugins()` once before
it builds or checks a configuration, so the dependency points from the roots down to the plugins and from the
plugins down to the kernel, never back up.
"""

from __future__ import annotations


def register_in_tree_plugins() -> None:
    """Import every in-tree plugin module; their `@register` decorators fill the registry. Idempotent: a module
    that was imported before is not run again."""
    from inferplane.epp.flowcontrol import policies, saturation  # noqa: F401
    from inferplane.epp.scheduling import plugins  # noqa: F401
