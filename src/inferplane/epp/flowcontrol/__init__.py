"""Admission and flow control: saturation detection, priority bands and fairness queues, shedding, model rewrite.
Pure code driven by an injectable clock."""

from inferplane.epp.flowcontrol.admission import (
    FAIRNESS_HEADER,
    OBJECTIVE_HEADER,
    AdmissionController,
    is_sheddable,
    resolve_objective,
)
from inferplane.epp.flowcontrol.aio import AdmissionRejected, AsyncAdmission, build_admission_controller
from inferplane.epp.flowcontrol.controller import FlowController, Ticket
from inferplane.epp.flowcontrol.outcomes import Admitted, Outcome, Rejected
from inferplane.epp.flowcontrol.rewrite import (
    REWRITE_HEADER,
    ModelRewriter,
    ModelRewriteResource,
    RewriteDecision,
    RewriteRule,
    RewriteTarget,
)
from inferplane.epp.flowcontrol.saturation import ConcurrencyDetector, SaturationDetector, UtilizationDetector

__all__ = [
    "FAIRNESS_HEADER",
    "OBJECTIVE_HEADER",
    "REWRITE_HEADER",
    "AdmissionController",
    "AdmissionRejected",
    "Admitted",
    "AsyncAdmission",
    "ConcurrencyDetector",
    "FlowController",
    "ModelRewriteResource",
    "ModelRewriter",
    "Outcome",
    "Rejected",
    "RewriteDecision",
    "RewriteRule",
    "RewriteTarget",
    "SaturationDetector",
    "Ticket",
    "UtilizationDetector",
    "build_admission_controller",
    "is_sheddable",
    "resolve_objective",
]
