"""Local orchestration: resources → processes (plan), their supervision, the state directory, status.

Public API: `Runtime`, `run_deployment`, `RuntimeOptions` (imported lazily so that `python -m
inferplane.runtime.guardian` and the LWS worker start without loading the rest).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inferplane.runtime.plan import RuntimeOptions
    from inferplane.runtime.runtime import Runtime, run_deployment

__all__ = ["Runtime", "RuntimeOptions", "run_deployment"]


def __getattr__(name: str) -> Any:
    if name in ("Runtime", "run_deployment"):
        from inferplane.runtime import runtime

        return getattr(runtime, name)
    if name == "RuntimeOptions":
        from inferplane.runtime.plan import RuntimeOptions

        return RuntimeOptions
    raise AttributeError(name)
