"""netdef.runtime: engine checks, argument and shape validation, the context pool, preprocessing, bench.

The CPU tests use a real LeNet engine built here by TensorRT-RTX. Tests that execute engines need
a GPU the backend supports and skip, with ``capabilities().reason``, where there is none.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from architectures import get as get_architecture
from netdef import backend
from netdef.build import BuildConfig, build
from netdef.cli.torch_models import torch_model
from netdef.compat import backend_problems, gpu_problems, load_engine, select_gpu
from netdef.dtypes import bfloat16
from netdef.engine import Engine
from netdef.errors import (
    CheckpointError,
    EngineFileError,
    EngineMismatchError,
    GPUUnavailableError,
    NetdefError,
    NetworkInputError,
    RunnerClosedError,
)
from netdef.runtime import bench, preprocess
from netdef.runtime.iospec import EngineIO, TensorSpec, shape_text
from netdef.runtime.pool import ContextPool
from netdef.runtime.runner import Runner, check_arguments, run_engine_file
from netdef.runtime.tensors import from_numpy, is_torch, numpy_dtype_of, to_numpy
from netdef.weights import Checkpoint
from tests.torch_models import LeNet

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "weights" / "lenet_digits.safetensors"
CAPS = backend.capabilities()
needs_gpu = pytest.mark.skipif(not CAPS.can_run, reason=f"cannot run engines here: {CAPS.reason}")
cpu_only = pytest.mark.skipif(CAPS.can_run, reason=f"a supported GPU is present ({CAPS.gpu}): checks the CPU refusal")
BATCH = (1, 4, 8)


def _lenet_network(batch: int = -1):
    return get_architecture("lenet").build_network(Checkpoint.load(WEIGHTS), batch=batch)


@pytest.fixture(scope="module")
def lenet_engine() -> Engine:
    """LeNet with a dynamic batch 1..8, built by the installed backend (on the CPU with TensorRT-RTX)."""
    definition = {"architecture": "lenet", "options": {}, "checkpoint": str(WEIGHTS)}
    return build(_lenet_network(), BuildConfig(batch=BATCH), definition=definition)


@pytest.fixture(scope="module")
def engine_file(lenet_engine, tmp_path_factory) -> Path:
    return lenet_engine.save(tmp_path_factory.mktemp("engines") / "lenet.engine")


def _with_metadata(engine: Engine, **changes) -> Engine:
    return Engine(engine.plan, {**engine.metadata, **changes})


# --------------------------------------------------------------------------- loading and compatibility


def test_load_refuses_another_backend_naming_both_sides(lenet_engine, tmp_path):
    foreign = _with_metadata(lenet_engine, backend="tensorrt" if backend.IS_RTX else "rtx", backend_version="10.9.0.1")
    path = foreign.save(tmp_path / "foreign.engine")
    with pytest.raises(EngineMismatchError) as info:
        load_engine(path)
    message = str(info.value)
    assert str(path) in message
    assert ("tensorrt 10.9.0.1" if backend.IS_RTX else "tensorrt_rtx 10.9.0.1") in message
    assert backend.describe() in message
    assert "netdef build lenet --weights" in message  # how to rebuild, from the engine's definition


def test_load_refuses_another_version_naming_both_versions(lenet_engine):
    older = _with_metadata(lenet_engine, backend_version="0.9.0.1")
    with pytest.raises(EngineMismatchError, match=r"built with \S+ 0\.9\.0\.1, but this netdef runs") as info:
        load_engine(older)
    assert backend.VERSION in str(info.value)
    assert isinstance(info.value, EngineFileError)


def test_load_refuses_an_engine_that_does_not_say_what_built_it(lenet_engine):
    meta = {k: v for k, v in lenet_engine.metadata.items() if k != "backend_version"}
    with pytest.raises(EngineMismatchError, match="does not say which TensorRT built it"):
        load_engine(Engine(lenet_engine.plan, meta))


def test_load_refuses_damaged_files_before_anything_else(engine_file, tmp_path):
    data = engine_file.read_bytes()
    truncated = tmp_path / "truncated.engine"
    truncated.write_bytes(data[:-100])
    with pytest.raises(EngineFileError, match="truncated"):
        load_engine(truncated)
    with pytest.raises(EngineFileError, match="no such engine file"):
        load_engine(tmp_path / "missing.engine")


@cpu_only
def test_load_refuses_without_a_supported_gpu_with_the_reason(engine_file):
    with pytest.raises(GPUUnavailableError) as info:
        load_engine(engine_file)
    assert CAPS.reason and CAPS.reason in str(info.value)
    assert str(engine_file) in str(info.value)


@cpu_only
def test_runner_and_run_engine_file_refuse_without_a_gpu(engine_file):
    x = np.zeros((1, 1, 28, 28), np.float32)
    with pytest.raises(GPUUnavailableError, match=CAPS.reason):
        Runner(engine_file)
    with pytest.raises(GPUUnavailableError, match=CAPS.reason):
        run_engine_file(engine_file, {"input": x})


def test_backend_problems_pure():
    meta = {"backend": "rtx", "backend_version": "1.7.1.116"}
    assert backend_problems(meta, "rtx", "1.7.1.116") == []
    (flavour,) = backend_problems(meta, "tensorrt", "10.9.0")
    assert "tensorrt_rtx 1.7.1.116" in flavour and "tensorrt 10.9.0" in flavour
    (version,) = backend_problems(meta, "rtx", "1.8.0.1")
    assert "1.7.1.116" in version and "1.8.0.1" in version


def test_gpu_problems_compare_compute_capability_and_name_both_gpus():
    ada = backend.GPU(0, "NVIDIA L4", (8, 9))
    meta = {"built_on_gpu": {"name": "NVIDIA A100", "compute_capability": [8, 0]}}
    (problem,) = gpu_problems(meta, ada)
    assert "NVIDIA A100 (sm_80)" in problem and "NVIDIA L4 (sm_89)" in problem
    assert gpu_problems({"built_on_gpu": {"name": "x", "compute_capability": [8, 9]}}, ada) == []
    assert gpu_problems({"built_on_gpu": None}, ada) == []  # built on the CPU: not tied to a GPU


def test_select_gpu_refuses_missing_and_unsupported_devices():
    gpus = (backend.GPU(0, "NVIDIA L4", (8, 9)), backend.GPU(1, "NVIDIA H100", (9, 0)))
    supported = backend.gpu_is_supported
    assert select_gpu(0, gpus, lambda g: True, "trt") is gpus[0]
    with pytest.raises(GPUUnavailableError, match=r"device 2 does not exist; this machine has 2 \(0: NVIDIA L4, 1"):
        select_gpu(2, gpus, supported, "trt")
    with pytest.raises(GPUUnavailableError, match="no CUDA GPU"):
        select_gpu(0, (), supported, "trt")
    with pytest.raises(GPUUnavailableError, match=r"cannot run engines on device 1, NVIDIA H100 \(sm_90\)"):
        select_gpu(1, gpus, lambda g: g.compute_capability != (9, 0), "tensorrt_rtx 1.7")
    with pytest.raises(ValueError, match="device must be a CUDA device index >= 0, got -1"):
        select_gpu(-1, gpus, supported, "trt")


# --------------------------------------------------------------------------- arguments


def test_runner_arguments_are_checked_all_at_once_before_the_gpu(lenet_engine):
    with pytest.raises(ValueError) as info:
        Runner(lenet_engine, device=-1, contexts=0, cuda_graph="yes")
    message = str(info.value)
    assert "device must be a CUDA device index >= 0, got -1" in message
    assert "contexts must be an integer >= 1, got 0" in message
    assert "cuda_graph must be True or False, got 'yes'" in message
    for bad in ({"device": True}, {"contexts": 2.0}, {"device": "0"}):
        with pytest.raises(ValueError, match="Runner:"):
            check_arguments(**{"device": 0, "contexts": 1, "cuda_graph": False, **bad})
    check_arguments(1, 4, True)


# --------------------------------------------------------------------------- shapes against the profile


def test_io_from_metadata_reads_inputs_outputs_and_profile(lenet_engine):
    io = EngineIO.from_metadata(lenet_engine.metadata)
    (x,) = io.inputs
    (prob,) = io.outputs
    assert (x.name, x.shape, x.dtype) == ("input", (-1, 1, 28, 28), np.dtype(np.float32))
    assert (x.min_shape, x.opt_shape, x.max_shape) == ((1, 1, 28, 28), (4, 1, 28, 28), (8, 1, 28, 28))
    assert (prob.name, prob.shape) == ("prob", (-1, 10))


def test_shape_outside_the_profile_names_input_shape_and_range(lenet_engine):
    io = EngineIO.from_metadata(lenet_engine.metadata, source="lenet.engine")
    with pytest.raises(NetworkInputError) as info:
        io.check({"input": ((9, 1, 28, 28), np.float32)})
    message = str(info.value)
    assert "lenet.engine" in message and "input 'input'" in message and "(9, 1, 28, 28)" in message
    assert "min (1, 1, 28, 28) .. max (8, 1, 28, 28)" in message and "dimension 0: 9 > 8" in message
    with pytest.raises(NetworkInputError, match="dimension 0: 0 < 1"):
        io.check({"input": ((0, 1, 28, 28), np.float32)})
    io.check({"input": ((8, 1, 28, 28), np.float64)})  # same-kind cast is allowed


def test_every_input_problem_is_listed_at_once():
    spec = TensorSpec("a", "input", (-1, 3), np.dtype(np.float32), (1, 3), (2, 3), (4, 3))
    spec_b = TensorSpec("b", "input", (2, 2), np.dtype(np.int32), (2, 2), (2, 2), (2, 2))
    spec_c = TensorSpec("c", "input", (5,), np.dtype(np.float16), (5,), (5,), (5,))
    io = EngineIO((spec, spec_b, spec_c), (), "two.engine")
    with pytest.raises(NetworkInputError) as info:
        io.check({"a": ((2, 4), np.float32), "b": ((2, 2), np.float32), "zz": ((1,), np.float32)})
    message = str(info.value)
    assert "missing inputs: 'c'" in message
    assert "unknown inputs: 'zz' (the engine's inputs are ['a', 'b', 'c'])" in message
    assert "input 'a': expected shape (?, 3), got (2, 4) (dimension 1)" in message
    assert "input 'b': expected dtype int32, got float32, which cannot be cast to it" in message
    with pytest.raises(NetworkInputError, match=r"expected shape \(\?, 3\), got \(3,\) \(2 dimensions, not 1\)"):
        io.check({"a": ((3,), np.float32), "b": ((2, 2), np.int32), "c": ((5,), np.float16)})


def test_bind_positional_and_named_inputs():
    specs = tuple(TensorSpec(n, "input", (1,), np.dtype(np.float32)) for n in ("x", "y"))
    io = EngineIO(specs, (), "e")
    assert io.bind([1], {"y": 2}) == {"x": 1, "y": 2}
    with pytest.raises(NetworkInputError, match="3 positional inputs given, the engine has 2"):
        io.bind([1, 2, 3], {})
    with pytest.raises(NetworkInputError, match=r"input\(s\) \['x'\] given both by position and by name"):
        io.bind([1], {"x": 2})


@settings(max_examples=40, deadline=None)
@given(
    lo=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    extra=st.lists(st.integers(0, 4), min_size=3, max_size=3),
    given_shape=st.lists(st.integers(0, 12), min_size=1, max_size=3),
)
def test_profile_check_agrees_with_an_independent_predicate(lo, extra, given_shape):
    hi = tuple(a + e for a, e in zip(lo, extra, strict=False))
    spec = TensorSpec("t", "input", (-1,) * len(lo), np.dtype(np.float32), tuple(lo), tuple(lo), hi)
    inside = len(given_shape) == len(lo) and all(a <= g <= b for g, a, b in zip(given_shape, lo, hi, strict=False))
    assert (spec.shape_problems(tuple(given_shape)) == []) == inside


def test_metadata_without_a_profile_for_a_dynamic_input_is_refused(lenet_engine):
    meta = {**lenet_engine.metadata, "profile": {}}
    with pytest.raises(EngineFileError, match=r"dynamic input 'input' \(\?, 1, 28, 28\) has no profile"):
        EngineIO.from_metadata(meta)
    with pytest.raises(EngineFileError, match="lists no inputs or outputs"):
        EngineIO.from_metadata({})
    assert shape_text((-1,)) == "(?,)"


# --------------------------------------------------------------------------- the context pool


def test_pool_never_hands_one_context_to_two_threads():
    size, threads, rounds = 3, 12, 40
    pool = ContextPool([{"id": i, "busy": False} for i in range(size)])
    lock = threading.Lock()
    stats = {"now": 0, "max": 0, "double": 0, "uses": 0}

    def work() -> None:
        for _ in range(rounds):
            with pool.acquire() as item:
                with lock:
                    stats["double"] += item["busy"]
                    item["busy"] = True
                    stats["now"] += 1
                    stats["max"] = max(stats["max"], stats["now"])
                    stats["uses"] += 1
                time.sleep(0.0005)
                with lock:
                    item["busy"] = False
                    stats["now"] -= 1

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert stats["double"] == 0
    assert stats["uses"] == threads * rounds
    assert 2 <= stats["max"] <= size  # contexts were really shared out, never more than exist
    assert pool.in_use == 0


def test_pool_timeout_acquire_all_and_close():
    pool = ContextPool(["a", "b"], name="runner for x.engine")
    with pool.acquire() as first, pool.acquire() as second:
        assert {first, second} == {"a", "b"}
        with pytest.raises(TimeoutError, match=r"runner for x.engine: no context became free within 0.05 s \(2 in"):
            with pool.acquire(timeout=0.05):
                pass
        with pytest.raises(TimeoutError, match="exclusive access"):
            with pool.acquire_all(timeout=0.05):
                pass
    events = []

    def late_call() -> None:
        with pool.acquire():
            events.append("call")

    with pool.acquire_all() as items:
        assert sorted(items) == ["a", "b"]
        thread = threading.Thread(target=late_call)
        thread.start()
        time.sleep(0.05)
        events.append("exclusive done")  # the call waited for the exclusive holder
    thread.join()
    assert events == ["exclusive done", "call"]
    assert sorted(pool.close()) == ["a", "b"]
    assert pool.close() == []
    with pytest.raises(RunnerClosedError, match="runner for x.engine is closed"):
        with pool.acquire():
            pass
    with pytest.raises(ValueError, match="at least one"):
        ContextPool([])


def test_pool_close_waits_for_calls_in_flight():
    pool = ContextPool([1])
    order = []

    def call() -> None:
        with pool.acquire():
            time.sleep(0.1)
            order.append("call finished")

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.02)
    pool.close()
    order.append("closed")
    thread.join()
    assert order == ["call finished", "closed"]


# --------------------------------------------------------------------------- numpy and torch buffers


def test_tensor_helpers_map_dtypes_both_ways():
    t = torch.arange(6, dtype=torch.bfloat16).reshape(2, 3)
    assert is_torch(t) and not is_torch(np.zeros(1))
    assert numpy_dtype_of(t) == bfloat16
    array = to_numpy(t)
    assert array.dtype == bfloat16 and array.shape == (2, 3)
    np.testing.assert_array_equal(array.astype(np.float32), t.float().numpy())
    back = from_numpy(array)
    assert back.dtype == torch.bfloat16 and torch.equal(back, t)
    assert numpy_dtype_of(torch.zeros(1, dtype=torch.int64)) == np.int64
    assert to_numpy(torch.ones(2), np.float16).dtype == np.float16


# --------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("size", [(7, 5), (32, 48), (13, 13)])
def test_resize_matches_torch_bilinear(size, rng):
    image = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    ours = preprocess.resize(image, size)
    t = torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1)[None]
    ref = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(ours, ref[0].permute(1, 2, 0).numpy(), rtol=0, atol=1e-9)


def test_preprocess_image_matches_a_torch_pipeline(rng):
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    x = preprocess.preprocess_image(image, resize_shorter=24, crop=20)
    assert x.shape == (1, 3, 20, 20) and x.dtype == np.float32
    t = torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1)[None] / 255
    t = torch.nn.functional.interpolate(t, size=(24, 32), mode="bilinear", align_corners=False)
    t = t[:, :, 2:22, 6:26]
    mean = torch.tensor(preprocess.IMAGENET_MEAN, dtype=torch.float64)[:, None, None]
    std = torch.tensor(preprocess.IMAGENET_STD, dtype=torch.float64)[:, None, None]
    np.testing.assert_allclose(x, ((t - mean) / std).numpy(), rtol=1e-6, atol=1e-6)


def test_preprocess_batches_grayscale_floats_and_alpha(rng):
    batch = rng.random((2, 8, 8, 4))  # NHWC with alpha, floats in [0, 1]: not rescaled
    x = preprocess.preprocess_image(batch, mean=None, std=None)
    assert x.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(x, batch[..., :3].transpose(0, 3, 1, 2), rtol=1e-6)
    gray = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    g = preprocess.preprocess_image(gray, mean=(0.5,), std=(0.25,))
    np.testing.assert_allclose(g[0, 0], (gray / 255 - 0.5) / 0.25, rtol=1e-6)


def test_preprocess_errors_are_clear(rng):
    with pytest.raises(ValueError, match="last axis must be channels"):
        preprocess.preprocess_image(rng.random((3, 32, 32)))
    with pytest.raises(ValueError, match=r"image has 1 channel\(s\) but mean has 3"):
        preprocess.preprocess_image(rng.random((8, 8)))
    with pytest.raises(ValueError, match="crop .* is larger than the image"):
        preprocess.preprocess_image(rng.random((8, 8, 3)), crop=9)
    with pytest.raises(ValueError, match="std must not contain zeros"):
        preprocess.preprocess_image(rng.random((8, 8, 3)), std=(1, 0, 1))


def test_top_k_and_softmax_match_torch(rng):
    logits = rng.standard_normal((5, 10)).astype(np.float32)
    probs = preprocess.softmax(logits)
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(logits), dim=1).numpy(), rtol=1e-5, atol=1e-7)
    labels = [f"class {i}" for i in range(10)]
    ours = preprocess.top_k(probs, 3, labels)
    values, indices = torch.topk(torch.from_numpy(probs), 3, dim=1)
    for row, vals, idx in zip(ours, values.numpy(), indices.numpy(), strict=True):
        assert [p.index for p in row] == idx.tolist()
        np.testing.assert_allclose([p.score for p in row], vals)
        assert [p.label for p in row] == [labels[i] for i in idx]
    single = preprocess.top_k(torch.from_numpy(probs[0]), 1)
    assert single == [preprocess.Prediction(int(indices[0, 0]), float(values[0, 0]), None)]


def test_top_k_ties_and_errors():
    assert [p.index for p in preprocess.top_k([0.2, 0.4, 0.4, 0.0], 3)] == [1, 2, 0]
    with pytest.raises(ValueError, match="k must be between 1 and the number of classes 4, got 5"):
        preprocess.top_k([0.1] * 4, 5)
    with pytest.raises(ValueError, match="2 labels given for 4 classes"):
        preprocess.top_k([0.1] * 4, 1, labels=["a", "b"])


# --------------------------------------------------------------------------- bench and torch models


def test_bench_statistics_and_call_counts():
    calls = []
    times = iter([9.0] * 3 + [1.0, 2.0, 3.0, 4.0, 10.0])
    result = bench.measure("x", lambda: calls.append(1) or next(times), batch=4, warmup=3, iterations=5)
    assert len(calls) == 8 and result.iterations == 5
    assert result.times_ms == (1.0, 2.0, 3.0, 4.0, 10.0)
    assert result.median_ms == 3.0 and result.mean_ms == 4.0 and result.min_ms == 1.0
    assert result.p90_ms == pytest.approx(np.percentile([1, 2, 3, 4, 10], 90))
    assert result.throughput == pytest.approx(4 * 5 / result.wall_s)
    with pytest.raises(ValueError, match="warmup must be >= 0, got -1; iterations must be >= 1, got 0"):
        bench.measure("x", lambda: 0.0, 1, -1, 0)


def test_synthetic_inputs_follow_the_profile(lenet_engine):
    io = EngineIO.from_metadata(lenet_engine.metadata)
    inputs = bench.synthetic_inputs(io, 5, seed=3)
    assert inputs["input"].shape == (5, 1, 28, 28) and inputs["input"].dtype == np.float32
    np.testing.assert_array_equal(inputs["input"], bench.synthetic_inputs(io, 5, seed=3)["input"])
    with pytest.raises(NetworkInputError, match="dimension 0: 9 > 8"):
        bench.synthetic_inputs(io, 9)


def test_torch_lenet_matches_the_test_reference_module(rng):
    checkpoint = Checkpoint.load(WEIGHTS)
    ours = torch_model("lenet", checkpoint)
    reference = LeNet()
    reference.load_state_dict({k: torch.from_numpy(np.array(checkpoint[k])) for k in reference.state_dict()})
    x = torch.from_numpy(rng.random((3, 1, 28, 28)).astype(np.float32))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), torch.softmax(reference.eval()(x), dim=1))


def test_torch_model_errors():
    with pytest.raises(NetdefError, match="no PyTorch model for architecture 'vgg16'; --vs-torch supports lenet"):
        torch_model("vgg16", {})
    checkpoint = dict(Checkpoint.load(WEIGHTS))
    del checkpoint["fc2.bias"]
    checkpoint["conv1.weight"] = np.zeros((20, 1, 3, 3), np.float32)
    with pytest.raises(CheckpointError) as info:
        torch_model("lenet", checkpoint, source="w.pth")
    assert "missing 'fc2.bias' (10,)" in str(info.value)
    assert "'conv1.weight': expected shape (20, 1, 5, 5), got (20, 1, 3, 3)" in str(info.value)


# --------------------------------------------------------------------------- CLI


def test_bench_cli_refuses_a_batch_outside_the_profile(engine_file):
    result = subprocess.run(
        [sys.executable, "-m", "netdef.cli", "bench", str(engine_file), "--batch", "16"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert "shape (16, 1, 28, 28) is outside the engine's optimization profile" in result.stderr
    assert "Traceback" not in result.stderr


@cpu_only
def test_bench_cli_refuses_without_a_gpu(engine_file):
    from typer.testing import CliRunner

    from netdef.cli import app

    for args in (["bench", str(engine_file), "--batch", "4"], ["bench", "lenet", "-w", str(WEIGHTS), "--vs-torch"]):
        result = CliRunner().invoke(app, args)
        assert isinstance(result.exception, GPUUnavailableError), result.output
        assert CAPS.reason in str(result.exception)
    result = CliRunner().invoke(app, ["bench", "lenet"])
    assert "give its checkpoint with --weights" in str(result.exception)


# --------------------------------------------------------------------------- on a supported GPU


@pytest.fixture(scope="module")
def digits():
    from netdef.datasets import digits_split

    return digits_split().x_test[:8]


@needs_gpu
def test_lenet_engine_matches_the_reference_executor_at_every_batch(engine_file, digits):
    from netdef.reference import run

    network = _lenet_network()
    with Runner(engine_file) as runner:
        for batch in (1, 3, 8):
            x = digits[:batch]
            out = runner(x)
            expected = run(network.trt_network, {"input": x}).outputs["prob"]
            assert out.shape == (batch, 10)
            np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
        with pytest.raises(NetworkInputError, match="dimension 0: 9 > 8"):
            runner(np.zeros((9, 1, 28, 28), np.float32))


@needs_gpu
def test_two_contexts_in_two_threads_give_the_single_thread_results(engine_file, digits):
    with Runner(engine_file, contexts=2) as runner:
        expected = [runner(digits[i : i + 2]) for i in range(0, 8, 2)]
        errors, used = [], set()

        def work() -> None:
            try:
                for _ in range(25):
                    for i, want in enumerate(expected):
                        np.testing.assert_allclose(runner(digits[2 * i : 2 * i + 2]), want, rtol=0, atol=1e-6)
                used.add(runner.num_contexts)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert runner._pool.in_use == 0


@needs_gpu
def test_torch_cuda_tensors_zero_copy_and_cuda_graphs(engine_file, digits):
    with Runner(engine_file, cuda_graph=True) as runner:
        want = runner(digits[:4])
        again = runner(digits[:4])  # replayed graph
        np.testing.assert_allclose(again, want, rtol=0, atol=1e-6)
        x = torch.from_numpy(digits[:4]).to(f"cuda:{runner.device}")
        out = runner.infer({"input": x})["prob"]
        assert out.is_cuda and out.dtype == torch.float32
        np.testing.assert_allclose(out.cpu().numpy(), want, rtol=1e-5, atol=1e-6)
        cpu_out = runner(torch.from_numpy(digits[:4]))
        assert is_torch(cpu_out) and not cpu_out.is_cuda
        outputs, ms = runner.infer_timed(digits[:4])
        assert ms > 0
        with runner.exclusive():
            assert runner._pool.in_use == runner.num_contexts


@needs_gpu
def test_device_memory_is_freed_when_the_runner_closes(engine_file, digits):
    from netdef.runtime import cuda

    with Runner(engine_file, contexts=2) as runner:  # first use loads libraries once
        runner(digits)
    free_start, _ = cuda.mem_get_info(0)
    for _ in range(3):
        runner = Runner(engine_file, contexts=2)
        runner(digits)
        runner.close()
    free_end, _ = cuda.mem_get_info(0)
    assert abs(free_end - free_start) < 16 << 20, (free_start, free_end)
    with pytest.raises(RunnerClosedError):
        runner(digits)


@needs_gpu
def test_second_device_when_present(engine_file, digits):
    if len(backend.gpus()) < 2:
        pytest.skip(f"needs 2 GPUs, this machine has {len(backend.gpus())}")
    with Runner(engine_file, device=1) as runner:
        out = runner(digits[:2])
    assert out.shape == (2, 10)
