"""Latency and throughput of an engine (and of PyTorch eager on the same GPU), timed with CUDA events."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BenchResult:
    """Per-call times of ``iterations`` calls after ``warmup``; throughput in samples per second."""

    name: str
    batch: int
    warmup: int
    times_ms: tuple[float, ...]
    wall_s: float

    @property
    def iterations(self) -> int:
        return len(self.times_ms)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.times_ms))

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.times_ms))

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.times_ms, 90))

    @property
    def min_ms(self) -> float:
        return float(np.min(self.times_ms))

    @property
    def throughput(self) -> float:
        """Samples per second over the timed calls' wall-clock time (host overhead included)."""
        return self.batch * self.iterations / self.wall_s if self.wall_s > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "batch": self.batch,
            "warmup": self.warmup,
            "iterations": self.iterations,
            "median_ms": self.median_ms,
            "mean_ms": self.mean_ms,
            "p90_ms": self.p90_ms,
            "min_ms": self.min_ms,
            "throughput_per_s": self.throughput,
        }


def check_counts(warmup: int, iterations: int) -> None:
    problems = []
    if warmup < 0:
        problems.append(f"warmup must be >= 0, got {warmup}")
    if iterations < 1:
        problems.append(f"iterations must be >= 1, got {iterations}")
    if problems:
        raise ValueError("; ".join(problems))


def measure(name: str, call: Callable[[], float], batch: int, warmup: int, iterations: int) -> BenchResult:
    """Run ``call`` (which returns its own GPU time in ms) ``warmup`` times untimed, then ``iterations`` times."""
    check_counts(warmup, iterations)
    for _ in range(warmup):
        call()
    times = []
    started = time.perf_counter()
    for _ in range(iterations):
        times.append(float(call()))
    return BenchResult(name, batch, warmup, tuple(times), time.perf_counter() - started)


def bench_runner(
    runner: Any, inputs: Mapping[str, Any], warmup: int = 20, iterations: int = 200, name: str = "tensorrt"
) -> BenchResult:
    """Time ``runner.infer_timed(inputs)``: host-to-device copies, execution and device-to-host copies."""
    batch = _batch_of(inputs.values())
    return measure(name, lambda: runner.infer_timed(inputs)[1], batch, warmup, iterations)


def bench_torch(model: Any, x: np.ndarray, device: int = 0, warmup: int = 20, iterations: int = 200) -> BenchResult:
    """Time PyTorch eager ``model`` on CUDA ``device`` the same way: NumPy in, copy, forward, copy back."""
    import torch

    dev = torch.device("cuda", device)
    model = model.to(dev).eval()
    stream = torch.cuda.current_stream(dev)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    host = torch.from_numpy(np.ascontiguousarray(x)).pin_memory()

    def call() -> float:
        with torch.inference_mode():
            start.record(stream)
            out = model(host.to(dev, non_blocking=True))
            out.to("cpu")
            end.record(stream)
        end.synchronize()
        return float(start.elapsed_time(end))

    return measure("pytorch eager", call, int(x.shape[0]), warmup, iterations)


def _batch_of(arrays: Sequence[Any] | Any) -> int:
    for array in arrays:
        shape: tuple[int, ...] = getattr(array, "shape", ())
        if len(shape):
            return int(shape[0])
    return 1


def synthetic_inputs(io: Any, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Uniform [0, 1) inputs for every input of ``io`` (an :class:`EngineIO`) with batch ``batch``.

    The first dimension is ``batch`` when dynamic; other dynamic dimensions take the profile's
    optimum. Shapes are checked against the profile (a clear error when ``batch`` is outside it).
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in io.inputs:
        opt = spec.opt_shape or spec.shape
        # The first dimension is always ``batch``: for a static engine the profile check names a mismatch.
        dims = zip(spec.shape, opt, strict=True)
        shape = tuple(batch if i == 0 else (o if d == -1 else d) for i, (d, o) in enumerate(dims))
        inputs[spec.name] = rng.random(shape).astype(spec.dtype)
    io.check({name: (x.shape, x.dtype) for name, x in inputs.items()})
    return inputs
