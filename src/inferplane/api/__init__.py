"""The resource model users keep in git: pydantic models, YAML loading with positions, cross-checks.

from inferplane.api import load_deployment
dep = load_deployment("deployments/pattern3-caching")   # raises DiagnosticsError listing every problem
"""

from __future__ import annotations

from inferplane.api.deployment import Deployment
from inferplane.api.diagnostics import Diagnostic, DiagnosticsError
from inferplane.api.loader import load_deployment
from inferplane.api.modelservice import ModelService
from inferplane.api.pool import InferencePool
from inferplane.api.vllm_args import VllmArgs

__all__ = [
    "Deployment",
    "Diagnostic",
    "DiagnosticsError",
    "InferencePool",
    "ModelService",
    "VllmArgs",
    "load_deployment",
]
