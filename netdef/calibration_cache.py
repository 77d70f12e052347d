"""INT8 calibration caches: per-tensor activation ranges ``amax``, their scales, and the JSON file they live in.

:mod:`netdef.calibration` measures the ranges; the int8 network (:mod:`netdef.network.quantization`)
reads them from here. A cache is reused until it is deleted or calibrated again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from netdef import __version__
from netdef.errors import CalibrationError

INT8_MAX = 127
"""Symmetric INT8 range is [-128, 127]; scales map ``amax`` to 127."""

METHODS = ("max", "percentile", "entropy")
CACHE_FORMAT = "netdef-int8-calibration"
CACHE_VERSION = 1
DEFAULT_PERCENTILE = 99.99
DEFAULT_BINS = 2048
LEVELS = 128
"""Quantized levels of ``|x|`` (INT8's 0..127 plus zero), as TensorRT's entropy calibration uses."""

log = logging.getLogger("netdef.calibration")


# --------------------------------------------------------------------------- the result and its cache


@dataclass
class Calibration:
    """Calibrated activation ranges: tensor name -> ``amax`` (the int8 scale is ``amax / 127``)."""

    amax: dict[str, float]
    method: str
    architecture: str | None = None
    percentile: float | None = None
    bins: int | None = None
    samples: int = 0
    consumers: dict[str, list[str]] = field(default_factory=dict)
    """Tensor -> the layers it feeds (for people reading the cache)."""
    checkpoint: str | None = None
    weights_sha256: str | None = None
    """Fingerprint of the network's weights when calibrated; a mismatch at build time is warned about."""
    netdef_version: str = __version__
    seconds: float | None = None

    @property
    def scales(self) -> dict[str, float]:
        """Tensor name -> INT8 scale ``amax / 127`` (1.0 for a tensor that was all zeros)."""
        return {name: float(scale_from_amax(amax)) for name, amax in self.amax.items()}

    def to_json(self) -> dict[str, Any]:
        scales = self.scales
        return {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "netdef_version": self.netdef_version,
            "architecture": self.architecture,
            "checkpoint": self.checkpoint,
            "weights_sha256": self.weights_sha256,
            "method": self.method,
            "options": {"percentile": self.percentile, "bins": self.bins},
            "samples": self.samples,
            "seconds": self.seconds,
            "tensors": {
                name: {"amax": amax, "scale": scales[name], "layers": self.consumers.get(name, [])}
                for name, amax in self.amax.items()
            },
        }

    def save(self, path: str | Path) -> Path:
        """Write the JSON cache (atomically: a temporary file renamed over ``path``)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_json(cls, data: Any, source: str = "<calibration>") -> Calibration:
        """Parse a cache; :class:`CalibrationError` lists every problem found."""
        if not isinstance(data, dict):
            raise CalibrationError(f"{source}: not a netdef calibration cache (expected a JSON object)")
        problems = []
        if data.get("format") != CACHE_FORMAT:
            problems.append(f"format is {data.get('format')!r}, expected {CACHE_FORMAT!r}")
        if data.get("version") != CACHE_VERSION:
            problems.append(f"version is {data.get('version')!r}, this netdef reads version {CACHE_VERSION}")
        if data.get("method") not in METHODS:
            problems.append(f"method is {data.get('method')!r}, expected one of {', '.join(METHODS)}")
        tensors = data.get("tensors")
        amax: dict[str, float] = {}
        consumers: dict[str, list[str]] = {}
        if not isinstance(tensors, dict) or not tensors:
            problems.append("no 'tensors' (tensor name -> {amax, scale})")
            tensors = {}
        for name, entry in tensors.items():
            value = entry.get("amax") if isinstance(entry, dict) else None
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                problems.append(f"tensor {name!r}: amax must be a finite number >= 0, found {value!r}")
                continue
            amax[name] = float(value)
            consumers[name] = list(entry.get("layers") or [])
        if problems:
            raise CalibrationError(f"{source}: {len(problems)} problem(s) in the calibration cache", problems)
        options = data.get("options") or {}
        return cls(
            amax=amax,
            method=data["method"],
            architecture=data.get("architecture"),
            percentile=options.get("percentile"),
            bins=options.get("bins"),
            samples=int(data.get("samples") or 0),
            consumers=consumers,
            checkpoint=data.get("checkpoint"),
            weights_sha256=data.get("weights_sha256"),
            netdef_version=str(data.get("netdef_version", "?")),
            seconds=data.get("seconds"),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise CalibrationError(
                f"calibration cache {str(path)!r} does not exist (make it with `netdef calibrate`)"
            ) from None
        except OSError as exc:
            raise CalibrationError(f"calibration cache {str(path)!r} cannot be read: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"calibration cache {str(path)!r} is not valid JSON: {exc}") from None
        calibration = cls.from_json(data, str(path))
        if calibration.netdef_version != __version__:
            log.warning("%s was written by netdef %s (this is %s)", path, calibration.netdef_version, __version__)
        return calibration

    def problems_for(self, architecture: str | None = None, method: str | None = None) -> list[str]:
        """Why this calibration does not fit ``architecture`` / ``method`` (empty when it does)."""
        found = []
        if architecture is not None and self.architecture not in (None, architecture):
            found.append(f"it was made for architecture {self.architecture!r}, not {architecture!r}")
        if method is not None and self.method != method:
            found.append(f"it was made with method {self.method!r}, not {method!r}")
        return found


def weights_fingerprint(weights: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the weights' names, shapes and bytes (the weights a network hands TensorRT)."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name])
        digest.update(f"{name}:{array.dtype}:{array.shape};".encode())
        digest.update(array.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def scale_from_amax(amax: np.ndarray | float) -> np.ndarray:
    """``amax / 127`` as float32; a zero range (a channel or tensor that is all zeros) gets scale 1."""
    amax = np.asarray(amax, dtype=np.float64)
    return np.where(amax > 0, amax / INT8_MAX, 1.0).astype(np.float32)
