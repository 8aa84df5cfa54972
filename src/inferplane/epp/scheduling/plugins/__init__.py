"""The plugin implementations; importing this package registers every type."""

from inferplane.epp.scheduling.plugins import (
    external,
    filters,
    load,
    pickers,
    precise,
    prefix,
    profiles,
    scorers,
)

__all__ = ["external", "filters", "load", "pickers", "precise", "prefix", "profiles", "scorers"]
