"""INT8 explicit quantization: quantize/dequantize (Q/DQ) pairs on the inputs of convolutions and linear layers.

TensorRT 11 removed implicit INT8 (the builder flag and ``IInt8Calibrator``). With precision ``"int8"`` a
network computes in float32 and puts a Q/DQ pair on both inputs of every convolution and linear layer,
as TensorRT's Q/DQ placement guidance asks (quantize the inputs of weighted operations, not their outputs):

    x ── Q(int8, s_x) ── DQ ──┐
                              conv / matmul ── (bias, activation ...) float32
    W ── Q(int8, s_w[c]) ── DQ ┘

- activations are quantized per tensor with a calibrated scale ``s_x = amax / 127`` (``netdef.calibration``);
- weights per output channel, symmetric: ``s_w[c] = max|W[c]| / 127``;
- TensorRT fuses DQ -> conv/matmul <- DQ (and the Q of the next layer) into INT8 kernels; the tensors
  between stay float32. BatchNorm is folded into the convolution before its weights are quantized.

Names: ``conv1.weight`` (the float32 weight constant, refittable as before), ``conv1.weight.scale``,
``conv1.weight.quantize``, ``conv1.weight.dequantize``, ``conv1.input.scale``, ``conv1.input.quantize``,
``conv1.input.dequantize``. The convolution takes its kernel from input 1 (its ``kernel`` Weights stay
empty), which is what TensorRT requires for quantized weights.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from netdef.calibration_cache import INT8_MAX, Calibration, scale_from_amax
from netdef.errors import CalibrationError, NetworkDefinitionError

Tensor = Any  # trt.ITensor

log = logging.getLogger("netdef.calibration")

__all__ = ["INT8_MAX", "Quantization", "fake_quantize", "scale_from_amax", "weight_scales"]


def weight_scales(weight: np.ndarray, axis: int = 0) -> np.ndarray:
    """Per-channel symmetric scales along ``axis``: ``max|W[c]| / 127`` (1-D, float32)."""
    w = np.moveaxis(np.abs(np.asarray(weight, dtype=np.float32)), axis, 0)
    return scale_from_amax(w.reshape(w.shape[0], -1).max(axis=1))


def fake_quantize(x: np.ndarray, scale: np.ndarray | float, axis: int | None = None) -> np.ndarray:
    """``DQ(Q(x))`` in NumPy: ``clip(rint(x / s), -128, 127) * s`` (round half to even), float32."""
    x = np.asarray(x, dtype=np.float32)
    s = np.asarray(scale, dtype=np.float32)
    if axis is not None and s.ndim == 1:
        s = s.reshape((-1,) + (1,) * (x.ndim - axis - 1))
    return (np.clip(np.rint(x / s), -128, INT8_MAX) * s).astype(np.float32)


def _resolve(calibration: Any) -> Any:
    """A Calibration (loaded when given a cache file path), a mapping tensor name -> scale, or None."""
    if isinstance(calibration, (str, os.PathLike)):
        return Calibration.load(os.fspath(calibration))
    if calibration is not None and not isinstance(getattr(calibration, "scales", calibration), Mapping):
        raise CalibrationError(f"calibration must be a Calibration, a cache file or a mapping, got {type(calibration)}")
    return calibration


class Quantization:
    """The INT8 part of a network: its calibrated activation scales, the activations that feed weighted
    layers (recorded at every precision: that is what calibration measures on an fp32 network), and the
    scale problems found."""

    def __init__(self, precision: Any, calibration: Any = None):
        if calibration is not None and not precision.quantized:
            raise NetworkDefinitionError(
                f"a calibration was given for precision {precision.name!r}: only int8 uses one"
            )
        self.enabled = bool(precision.quantized)
        self.calibration = _resolve(calibration)
        scales = getattr(self.calibration, "scales", self.calibration)
        self.activation_scales: dict[str, float] | None = (
            None if scales is None else {str(k): float(v) for k, v in scales.items()}
        )
        self.points: dict[str, list[str]] = {}
        """Activation tensors feeding convolutions and linear layers -> the layers they feed."""
        self.tensors: dict[str, Tensor] = {}
        self.problems: list[str] = []

    def record(self, x: Tensor, layer: str) -> None:
        """Note that activation ``x`` feeds weighted layer ``layer`` (a full name)."""
        self.points.setdefault(x.name, []).append(layer)
        self.tensors.setdefault(x.name, x)

    def activation_scale(self, tensor: str, layer: str) -> float:
        """The calibrated scale of ``tensor``; 1.0 and a problem when it is missing or bad."""
        where = f"tensor {tensor!r} (input of layer {layer!r})"
        if self.activation_scales is None:
            self.problems.append(f"no calibration for {where}")
            return 1.0
        if tensor not in self.activation_scales:
            self.problems.append(f"calibration has no scale for {where}")
            return 1.0
        scale = self.activation_scales[tensor]
        if not (math.isfinite(scale) and scale > 0):
            self.problems.append(f"{where}: scale must be finite and > 0, calibration has {scale!r}")
            return 1.0
        return scale

    def check(self, network: str, table: Any) -> None:
        """Raise one :class:`CalibrationError` listing missing or bad activation scales of an int8 network.

        A calibration made on other weights (its fingerprint differs from ``table``'s) is only warned about.
        """
        if not self.enabled:
            return
        problems = list(self.problems)
        made_for = getattr(self.calibration, "architecture", None)
        if made_for not in (None, network):
            problems.insert(0, f"the calibration was made for {made_for!r}, this network is {network!r}")
        fingerprint = getattr(self.calibration, "weights_sha256", None)
        if fingerprint and table.fingerprint() != fingerprint:
            log.warning("int8 network %r: the calibration was measured with other weights", network)
        if problems:
            hint = " (run `netdef calibrate`, or netdef.calibration.calibrate, to make a calibration cache)"
            raise CalibrationError(f"int8 network {network!r}: {len(problems)} calibration problem(s){hint}", problems)
