"""The plugin implementations; importing this package registers every type."""

from inferplane.epp.scheduling.plugins import (
    balance,
    cost,
    external,
    filters,
    load,
    pickers,
    precise,
    prefix,
    profiles,
    scorers,
)

__all__ = ["balance", "cost", "external", "filters", "load", "pickers", "precise", "prefix", "profiles", "scorers"]
