"""INT8 Q/DQ layers (see :mod:`netdef.network.quantization` for the placement and names)."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.network.core import NetworkCore, Tensor
from netdef.network.quantization import weight_scales


class QuantizationMixin(NetworkCore):
    """Q/DQ layers for precision ``"int8"``: the weighted layers call :meth:`_quantize_input` on their
    activation input and :meth:`_quantize_weight` on their weight tensor (both no-ops at other precisions)."""

    def _quantize_input(self, x: Tensor, layer: str) -> Tensor:
        """``x`` (feeding weighted layer ``layer``) through Q/DQ with its calibrated per-tensor scale."""
        full = self.names.qualified(layer)
        self.quantization.record(x, full)
        if not self.quantized:
            return x
        scale = self.quantization.activation_scale(x.name, full)
        return self._qdq(x, f"{layer}.input", np.array(scale, dtype=np.float32), axis=None)

    def _quantize_weight(self, w: Tensor, layer: str, weight: np.ndarray, axis: int) -> Tensor:
        """Weight tensor ``w`` (holding ``weight``, output channels first) through Q/DQ per output channel
        along ``axis`` of ``w``."""
        if not self.quantized:
            return w
        return self._qdq(w, f"{layer}.weight", weight_scales(weight, 0), axis=axis)

    def _qdq(self, x: Tensor, base: str, scale: np.ndarray, axis: int | None) -> Tensor:
        """``x`` -> Q(int8) -> DQ(compute dtype), both reading the constant ``{base}.scale``."""
        s = self._constant(f"{base}.scale", np.array(scale, dtype=np.float32), role="scale", kind="scale")
        q = self.trt_network.add_quantize(x, s, trt.int8)
        if axis is not None:
            q.axis = axis
        self._named(q, "quantize", f"{base}.quantize")
        dq = self.trt_network.add_dequantize(q.get_output(0), s, self.precision.trt)
        if axis is not None:
            dq.axis = axis
        return self._named(dq, "dequantize", f"{base}.dequantize").get_output(0)
