"""netdef.backend: which TensorRT is used, what this machine can do, TensorRT's logger, BuildError."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import subprocess
import sys
import threading
import types

import pytest

from netdef import backend
from netdef.backend import trt
from netdef.errors import BackendNotFoundError, BuildError, NetdefError

TENSORRT_INSTALLED = importlib.util.find_spec("tensorrt") is not None
NOISE = (
    "[checkMacros.cpp::catchCudaError::250] Error Code 1: Cuda Runtime (In catchCudaError at "
    "/_src/common/dispatch/checkMacros.cpp:250 (cudaError 35: CUDA driver version is insufficient))"
)


def _fresh_network():
    builder = backend.create_builder()
    return builder, backend.create_network(builder)


def _log_an_error(name: str = "no_such_weights") -> None:
    """Make TensorRT log one ERROR line naming ``name`` (a weight name that does not exist)."""
    _, network = _fresh_network()
    assert network.mark_weights_refittable(name) is False


# --------------------------------------------------------------------------- selection


def test_default_selection_follows_what_is_installed():
    expected = "tensorrt" if TENSORRT_INSTALLED else "rtx"
    assert backend.BACKEND == expected
    assert trt.__name__.split(".")[0] == {"tensorrt": "tensorrt", "rtx": "tensorrt_rtx"}[expected]
    assert backend.IS_RTX == (expected == "rtx")
    assert backend.VERSION == trt.__version__ and str(backend.MAJOR_VERSION) == trt.__version__.split(".")[0]
    assert backend.describe().endswith(trt.__version__)


@pytest.mark.parametrize("value", ["rtx", "RTX", "  rtx\n"])
def test_netdef_backend_rtx_forces_tensorrt_rtx(monkeypatch, value):
    monkeypatch.setenv("NETDEF_BACKEND", value)
    module, name = backend._import_backend()
    assert name == "rtx"
    assert module.__name__ == "tensorrt_rtx" and hasattr(module, "Builder")


def test_bad_netdef_backend_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("NETDEF_BACKEND", "tensorrt-llm")
    with pytest.raises(BackendNotFoundError) as info:
        backend._import_backend()
    message = str(info.value)
    assert "NETDEF_BACKEND='tensorrt-llm'" in message
    assert "'rtx'" in message and "'tensorrt'" in message
    assert isinstance(info.value, ImportError) and isinstance(info.value, NetdefError)


def test_neither_backend_installed_names_both_extras(monkeypatch):
    real_import = importlib.import_module

    def no_tensorrt(name, *args, **kwargs):
        if name in ("tensorrt", "tensorrt_rtx"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delenv("NETDEF_BACKEND", raising=False)
    monkeypatch.setattr(importlib, "import_module", no_tensorrt)
    with pytest.raises(BackendNotFoundError) as info:
        backend._import_backend()
    message = str(info.value)
    assert "No module named 'tensorrt'" in message and "No module named 'tensorrt_rtx'" in message
    assert "pip install 'netdef-trt[tensorrt]'" in message and "pip install 'netdef-trt[rtx]'" in message


def test_a_stubs_only_tensorrt_package_is_skipped(monkeypatch):
    """A ``tensorrt`` without ``Builder`` (e.g. type stubs) must not be picked over TensorRT-RTX."""
    real_import = importlib.import_module
    stub = types.ModuleType("tensorrt")

    def stubs_only(name, *args, **kwargs):
        return stub if name == "tensorrt" else real_import(name, *args, **kwargs)

    monkeypatch.delenv("NETDEF_BACKEND", raising=False)
    monkeypatch.setattr(importlib, "import_module", stubs_only)
    module, name = backend._import_backend()
    assert name == "rtx" and module is not stub

    monkeypatch.setenv("NETDEF_BACKEND", "tensorrt")
    with pytest.raises(BackendNotFoundError, match="has no Builder"):
        backend._import_backend()


@pytest.mark.skipif(TENSORRT_INSTALLED, reason="tensorrt is installed here, so forcing it cannot fail")
def test_forcing_an_absent_tensorrt_fails_at_import_in_a_fresh_process():
    env = {**os.environ, "NETDEF_BACKEND": "tensorrt"}
    done = subprocess.run(
        [sys.executable, "-c", "import netdef.backend"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode != 0
    assert "BackendNotFoundError" in done.stderr
    assert "pip install 'netdef-trt[tensorrt]'" in done.stderr
    assert "netdef-trt[rtx]" not in done.stderr  # forced: only the forced backend is suggested


# --------------------------------------------------------------------------- capabilities


def test_capabilities_on_this_machine():
    caps = backend.capabilities()
    supported = [g for g in backend.gpus() if backend.gpu_is_supported(g)]
    assert caps.backend == backend.BACKEND and caps.version == backend.VERSION
    assert caps.can_run == bool(supported) == (caps.gpu is not None)
    assert caps.can_build_refittable == caps.can_run
    if backend.IS_RTX:
        assert caps.can_build, "TensorRT-RTX builds engines on the CPU"
    if caps.can_run:
        assert caps.reason == ""
    else:
        assert caps.reason, "a machine that cannot run engines must say why"
        assert "no CUDA GPU" in caps.reason or "does not support" in caps.reason
        print(f"this machine cannot run engines: {caps.reason}")


@pytest.mark.parametrize(
    ("cc", "rtx", "tensorrt"),
    [((7, 5), True, True), ((8, 6), True, True), ((8, 9), True, True), ((12, 0), True, True),
     ((9, 0), False, True), ((10, 0), False, True), ((7, 0), False, False), ((6, 1), False, False)],
)  # fmt: skip
def test_gpu_support_rules(monkeypatch, cc, rtx, tensorrt):
    gpu = backend.GPU(0, "test GPU", cc)
    monkeypatch.setattr(backend, "IS_RTX", True)
    assert backend.gpu_is_supported(gpu) is rtx
    monkeypatch.setattr(backend, "IS_RTX", False)
    assert backend.gpu_is_supported(gpu) is tensorrt


def test_capabilities_with_gpus_present(monkeypatch):
    probe = backend.capabilities.__wrapped__  # the uncached function
    h100, a10 = backend.GPU(0, "NVIDIA H100 80GB HBM3", (9, 0)), backend.GPU(1, "NVIDIA A10", (8, 6))
    monkeypatch.setattr(backend, "IS_RTX", True)

    monkeypatch.setattr(backend, "gpus", lambda: (h100,))
    caps = probe()
    assert not caps.can_run and caps.gpu is None and caps.can_build
    assert "NVIDIA H100 80GB HBM3 (sm_90)" in caps.reason and backend.describe() in caps.reason

    monkeypatch.setattr(backend, "gpus", lambda: (h100, a10))
    caps = probe()
    assert caps.can_run and caps.can_build_refittable and caps.gpu == a10 and caps.reason == ""

    monkeypatch.setattr(backend, "gpus", lambda: ())
    assert probe().reason == "no CUDA GPU is visible on this machine"


def test_gpu_sm_name():
    assert backend.GPU(0, "x", (8, 6)).sm == "sm_86"
    assert backend.GPU(0, "x", (12, 1)).sm == "sm_121"


# --------------------------------------------------------------------------- logger bridge


def test_tensorrt_messages_reach_python_logging(caplog):
    caplog.set_level(logging.DEBUG, logger="netdef.trt")
    _log_an_error("weights_named_in_the_log")
    errors = [r for r in caplog.records if r.name == "netdef.trt" and r.levelno == logging.ERROR]
    assert any("weights_named_in_the_log" in r.getMessage() for r in errors), caplog.text


def test_tensorrt_warnings_are_python_warnings(caplog):
    caplog.set_level(logging.DEBUG, logger="netdef.trt")
    _, network = _fresh_network()
    a = network.add_input("a", trt.float32, (1, 4))
    b = network.add_input("b", trt.float16, (1, 4))
    network.add_elementwise(a, b, trt.ElementWiseOperation.SUM)  # strongly typed: TensorRT only warns here
    warnings = [r.getMessage() for r in caplog.records if r.name == "netdef.trt" and r.levelno == logging.WARNING]
    assert any("Float" in m and "Half" in m for m in warnings), caplog.text


def test_severity_mapping(caplog):
    caplog.set_level(logging.DEBUG, logger="netdef.trt")
    severity = trt.ILogger.Severity
    expected = {
        severity.INTERNAL_ERROR: logging.CRITICAL,
        severity.ERROR: logging.ERROR,
        severity.WARNING: logging.WARNING,
        severity.INFO: logging.INFO,
        severity.VERBOSE: logging.DEBUG,
    }
    for sev in expected:
        backend.LOGGER.log(sev, f"mapping test {sev}")
    seen = {r.getMessage(): r.levelno for r in caplog.records if r.name == "netdef.trt"}
    assert {f"mapping test {sev}": level for sev, level in expected.items()}.items() <= seen.items()


def test_capture_errors_collects_error_lines_inside_the_block_only():
    with backend.capture_errors() as outer:
        with backend.capture_errors() as inner:
            _log_an_error("first_missing_name")
        _log_an_error("second_missing_name")
        backend.LOGGER.log(trt.ILogger.Severity.WARNING, "a warning is not an error")
    _log_an_error("after_the_block")
    assert [m for m in inner if "first_missing_name" in m] and not [m for m in inner if "second" in m]
    assert any("first_missing_name" in m for m in outer) and any("second_missing_name" in m for m in outer)
    assert not any("after_the_block" in m or "a warning" in m for m in outer + inner)


def test_capture_errors_is_per_thread():
    with backend.capture_errors() as mine:
        worker = threading.Thread(target=_log_an_error, args=("from_another_thread",))
        worker.start()
        worker.join()
        backend.LOGGER.log(trt.ILogger.Severity.ERROR, "from this thread")
    assert mine == ["from this thread"]


def test_cpu_only_cuda_noise_is_dropped(caplog):
    caplog.set_level(logging.DEBUG, logger="netdef.trt")
    assert backend.is_cpu_only_noise(NOISE)
    assert not backend.is_cpu_only_noise("IBuilder::buildSerializedNetwork: Error Code 4: API Usage Error")
    with backend.capture_errors() as errors:
        backend.LOGGER.log(trt.ILogger.Severity.ERROR, NOISE)
        backend.LOGGER.log(trt.ILogger.Severity.ERROR, "a real error")
    assert errors == ["a real error"]
    noise = [r for r in caplog.records if "cudaError 35" in r.getMessage()]
    assert noise and all(r.levelno == logging.DEBUG for r in noise)


def test_logger_never_raises():
    class Boom(logging.Handler):
        def emit(self, record):
            raise RuntimeError("a broken handler")

    handler = Boom()
    logger = logging.getLogger("netdef.trt")
    logger.addHandler(handler)
    try:
        backend.LOGGER.log(trt.ILogger.Severity.ERROR, "must not raise")  # TensorRT would swallow it
    finally:
        logger.removeHandler(handler)


# --------------------------------------------------------------------------- networks and builds


def test_networks_are_strongly_typed():
    _, network = _fresh_network()
    assert network.get_flag(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def test_refit_builder_flags():
    assert backend.refit_builder_flag("individual") == trt.BuilderFlag.REFIT_INDIVIDUAL
    assert backend.refit_builder_flag("identical") == trt.BuilderFlag.REFIT_IDENTICAL
    assert backend.refit_builder_flag("all") == trt.BuilderFlag.REFIT


def _build_error(network, builder) -> BuildError:
    with pytest.raises(BuildError) as info:
        backend.build_serialized_network(builder, network, builder.create_builder_config())
    return info.value


def test_build_error_carries_tensorrt_lines_for_a_network_without_outputs():
    builder, network = _fresh_network()
    x = network.add_input("x", trt.float32, (1, 4))
    network.add_activation(x, trt.ActivationType.RELU)
    error = _build_error(network, builder)
    assert error.trt_errors and any("at least one output" in line for line in error.trt_errors)
    assert all(f"TensorRT: {line}" in str(error) for line in error.trt_errors)
    assert not any(backend.is_cpu_only_noise(line) for line in error.trt_errors)
    assert isinstance(error, NetdefError) and isinstance(error, RuntimeError)


def test_build_error_for_mismatched_dtypes_in_a_strongly_typed_network():
    builder, network = _fresh_network()
    a = network.add_input("a", trt.float32, (1, 4))
    b = network.add_input("b", trt.float16, (1, 4))
    network.mark_output(network.add_elementwise(a, b, trt.ElementWiseOperation.SUM).get_output(0))
    error = _build_error(network, builder)
    assert any("same input types" in line for line in error.trt_errors), error.trt_errors
    assert not any(backend.is_cpu_only_noise(line) for line in error.trt_errors)
    assert backend.describe() in str(error)


def test_successful_build_returns_a_read_only_byte_view_of_the_plan():
    if not backend.capabilities().can_build:
        pytest.skip(backend.capabilities().reason)
    builder, network = _fresh_network()
    x = network.add_input("x", trt.float32, (2, 3))
    network.mark_output(network.add_activation(x, trt.ActivationType.RELU).get_output(0))
    plan = backend.build_serialized_network(builder, network, builder.create_builder_config())
    del builder, network  # the view keeps TensorRT's host memory alive on its own
    assert isinstance(plan, memoryview) and plan.readonly and plan.format == "B" and len(plan) > 100
    assert plan == bytes(plan) and hash(plan) == hash(bytes(plan))  # compares and hashes as bytes do
