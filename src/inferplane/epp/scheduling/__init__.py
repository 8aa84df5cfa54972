"""Scheduling: the framework (profiles → filters → weighted scorers → picker) and the plugins. Pure code, no I/O."""

from inferplane.epp.framework.config import build_plugins
from inferplane.epp.framework.interfaces import (
    CycleState,
    NoEndpointsAvailable,
    Observer,
    RequestState,
    SchedulingError,
    Usage,
)
from inferplane.epp.scheduling.builder import build_scheduler
from inferplane.epp.scheduling.scheduler import Scheduler

__all__ = [
    "CycleState",
    "NoEndpointsAvailable",
    "Observer",
    "RequestState",
    "Scheduler",
    "SchedulingError",
    "Usage",
    "build_plugins",
    "build_scheduler",
]
