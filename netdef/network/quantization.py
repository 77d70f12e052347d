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

from netdef.backend import trt
from netdef.calibration_cache import INT8_MAX, scale_from_amax
from netdef.errors import CalibrationError, NetworkDefinitionError
from netdef.network.core import NetworkCore, Tensor

log = logging.getLogger("netdef.calibration")


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
        from netdef.calibration_cache import Calibration

        return Calibration.load(calibration)
    if calibration is not None and not isinstance(getattr(calibration, "scales", calibration), Mapping):
        raise CalibrationError(f"calibration must be a Calibration, a cache file or a mapping, got {type(calibration)}")
    return calibration


class QuantizationMixin(NetworkCore):
    """Q/DQ insertion for precision ``"int8"``, and the record of which activations feed weighted layers.

    ``calibration``: activation scales for int8 (a :class:`netdef.calibration.Calibration`, a calibration
    cache file, or a mapping tensor name -> scale). Every precision records
    :attr:`quantization_points`, which is what calibration measures on an fp32 network.
    """

    def __init__(self, checkpoint: Mapping[str, np.ndarray] | None = None, *, calibration: Any = None, **kwargs):
        super().__init__(checkpoint, **kwargs)
        if calibration is not None and not self.precision.quantized:
            raise NetworkDefinitionError(
                f"a calibration was given for precision {self.precision.name!r}: only int8 uses one"
            )
        self.calibration = _resolve(calibration)
        scales = getattr(self.calibration, "scales", self.calibration)
        self.activation_scales: dict[str, float] | None = (
            None if scales is None else {str(k): float(v) for k, v in scales.items()}
        )
        """Calibrated activation scales by tensor name (int8 only)."""
        self.quantization_points: dict[str, list[str]] = {}
        """Activation tensors feeding convolutions and linear layers -> the layers they feed."""
        self.quantization_scales: dict[str, np.ndarray] = {}
        """Every scale constant in the network (``conv1.input.scale`` -> array); int8 only, not refittable."""
        self._quantized_tensors: dict[str, Tensor] = {}
        self._scale_problems: list[str] = []

    @property
    def quantized(self) -> bool:
        """Whether this network puts Q/DQ around convolutions and matrix multiplies."""
        return bool(self.precision.quantized)

    def quantization_tensors(self) -> dict[str, Tensor]:
        """Activation name (as when the layer was defined) -> the ITensor, for calibration."""
        return dict(self._quantized_tensors)

    # ------------------------------------------------------------------ hooks called by the layers

    def _quantize_convolution(self, x: Tensor, name: str, weight: np.ndarray, weights: Any) -> tuple:
        """Conv hook: ``(input, kernel Weights, kernel tensor or None)``.

        int8: the input goes through Q/DQ, and ``weights`` (already stored as ``{name}.weight``) become a
        constant -> Q/DQ per output channel that the convolution reads as input 1 (its Weights left empty).
        """
        x = self._quantize_activation(x, name)
        if not self.quantized:
            return x, weights, None
        constant = self._named(self.trt_network.add_constant(weight.shape, weights), "constant", f"{name}.weight")
        kernel = self._quantize_weight(constant.get_output(0), name, weight_scales(weight, 0), axis=0)
        return x, self.trt_weights(None), kernel

    def _quantize_linear(self, x: Tensor, w: Tensor, name: str, weight: np.ndarray) -> tuple[Tensor, Tensor]:
        """Linear hook: ``(x, w)`` through Q/DQ; ``w`` is the ``(..., out, in)`` weight constant, per row."""
        x = self._quantize_activation(x, name)
        if not self.quantized:
            return x, w
        axis = len(self.shape_of(w)) - 2
        return x, self._quantize_weight(w, name, weight_scales(weight, 0), axis=axis)

    # ------------------------------------------------------------------ Q/DQ

    def _quantize_activation(self, x: Tensor, layer: str) -> Tensor:
        key = x.name
        self.quantization_points.setdefault(key, []).append(self.qualified(layer))
        self._quantized_tensors.setdefault(key, x)
        if not self.quantized:
            return x
        scale = self._activation_scale(key, layer)
        return self._qdq(x, f"{layer}.input", np.array(scale, dtype=np.float32), axis=None)

    def _quantize_weight(self, w: Tensor, layer: str, scales: np.ndarray, axis: int) -> Tensor:
        return self._qdq(w, f"{layer}.weight", scales, axis=axis)

    def _qdq(self, x: Tensor, base: str, scale: np.ndarray, axis: int | None) -> Tensor:
        """``x`` -> Q(int8) -> DQ(compute dtype), both reading the constant ``{base}.scale``."""
        s = self._scale_constant(f"{base}.scale", scale)
        q = self.trt_network.add_quantize(x, s, trt.int8)
        if axis is not None:
            q.axis = axis
        self._named(q, "quantize", f"{base}.quantize")
        dq = self.trt_network.add_dequantize(q.get_output(0), s, self.precision.trt)
        if axis is not None:
            dq.axis = axis
        return self._named(dq, "dequantize", f"{base}.dequantize").get_output(0)

    def _scale_constant(self, name: str, values: np.ndarray) -> Tensor:
        full = self.qualified(name)
        array = np.array(values, dtype=np.float32, order="C")  # keeps a per-tensor scale 0-d (a scalar)
        self._keep_alive.append(array)
        weights = self.trt_weights(array)
        layer = self._named(self.trt_network.add_constant(array.shape, weights), "scale", name)
        self.name_weights(weights, full)
        self.quantization_scales[full] = array
        return layer.get_output(0)

    def _activation_scale(self, tensor: str, layer: str) -> float:
        where = f"tensor {tensor!r} (input of layer {self.qualified(layer)!r})"
        if self.activation_scales is None:
            self._scale_problems.append(f"no calibration for {where}")
            return 1.0
        if tensor not in self.activation_scales:
            self._scale_problems.append(f"calibration has no scale for {where}")
            return 1.0
        scale = self.activation_scales[tensor]
        if not (math.isfinite(scale) and scale > 0):
            self._scale_problems.append(f"{where}: scale must be finite and > 0, calibration has {scale!r}")
            return 1.0
        return scale

    def check(self) -> None:
        """Weight problems first (:class:`CheckpointError`), then missing or bad activation scales.

        A calibration made on other weights (its fingerprint differs) is only warned about.
        """
        super().check()
        made_for = getattr(self.calibration, "architecture", None)
        if made_for not in (None, self.name) and self.quantized:
            self._scale_problems.insert(0, f"the calibration was made for {made_for!r}, this network is {self.name!r}")
        fingerprint = getattr(self.calibration, "weights_sha256", None)
        if fingerprint and self.quantized:
            from netdef.calibration_cache import weights_fingerprint

            if weights_fingerprint(self.weights) != fingerprint:
                log.warning("int8 network %r: the calibration was measured with other weights", self.name)
        if self._scale_problems:
            hint = " (run `netdef calibrate`, or netdef.calibration.calibrate, to make a calibration cache)"
            header = f"int8 network {self.name!r}: {len(self._scale_problems)} calibration problem(s){hint}:"
            raise CalibrationError("\n".join([header, *(f"  - {p}" for p in self._scale_problems)]))
