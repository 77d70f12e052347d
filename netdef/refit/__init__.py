"""Refit built engines from a new checkpoint without rebuilding them.

>>> plan = refit_plan(Engine.load("lenet.engine"), "lenet_v2.safetensors")   # CPU: validate
>>> refit_engine_file("lenet.engine", "lenet_v2.safetensors", "lenet_v2.engine")  # GPU: apply
>>> runner.refit("lenet_v2.safetensors")  # GPU: hot swap on a live runner (calls refit_runner)
"""

from netdef.refit.apply import (
    RefitReport,
    apply_weights,
    deserialize,
    refit_engine,
    refit_engine_file,
    refit_runner,
    refitted_metadata,
    require_gpu,
    serialize_refitted,
)
from netdef.refit.plan import PlannedWeight, RefitPlan, refit_plan, refit_plan_from_network, to_torch

__all__ = [
    "PlannedWeight",
    "RefitPlan",
    "RefitReport",
    "apply_weights",
    "deserialize",
    "refit_engine",
    "refit_engine_file",
    "refit_plan",
    "refit_plan_from_network",
    "refit_runner",
    "refitted_metadata",
    "require_gpu",
    "serialize_refitted",
    "to_torch",
]
