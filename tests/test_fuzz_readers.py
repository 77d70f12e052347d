"""Seeded fuzzing of every reader (.safetensors, .pth, .npz, .wts) and of engine files.

Each case mutates a valid seed file (tests/fuzzing.py: bit flips, truncation, insertion,
deletion, boundary values, and structure-aware rewrites of the header or metadata that keep
lengths, CRCs and hashes valid) and reads it. The assertion: only netdef errors (a file that
still reads is fine, and its arrays are touched end to end), no case runs past its time bound,
and for ``.pth`` files the peak RSS of the reading process grows by at most 2 x the file size
+ 64 MiB (measured in a fresh process). ``make test`` runs 200 cases per reader, ``make test-all``
2,000 more (``slow``).
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import numpy as np
import pytest

from netdef.errors import NetdefError
from tests.fuzzing import CaseTimeout, mutate, time_bound
from tests.reliability_helpers import lenet_tensors, run_python

CASES = 200
SLOW_CASES = 2000
SECONDS_PER_CASE = 5.0


def _seed_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.standard_normal((4, 2, 3, 3)).astype(np.float32),
        "conv.bias": rng.standard_normal(4).astype(np.float16),
        "fc.weight": rng.standard_normal((3, 8)).astype(np.float64),
        "bn.num_batches_tracked": np.array(7, np.int64),
        "empty": np.zeros((0, 3), np.float32),
    }


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    from netdef.weights.convert import write_checkpoint

    folder = tmp_path_factory.mktemp("seeds")
    tensors = _seed_tensors()
    out = {}
    for suffix in (".safetensors", ".npz"):
        write_checkpoint(tensors, folder / f"seed{suffix}")
        out[suffix] = (folder / f"seed{suffix}").read_bytes()
    floats = {k: v for k, v in tensors.items() if v.dtype.kind == "f"}
    write_checkpoint(floats, folder / "seed.wts")
    out[".wts"] = (folder / "seed.wts").read_bytes()
    np.savez_compressed(folder / "compressed.npz", **tensors)
    out["compressed.npz"] = (folder / "compressed.npz").read_bytes()
    out[".engine"] = _engine_seed()
    return out


def _engine_seed() -> bytes:
    """LeNet's real metadata around a small stand-in plan (the CPU never deserializes plans)."""
    from architectures import get
    from netdef.build import build
    from netdef.engine import Engine
    from netdef.weights import Checkpoint

    network = get("lenet").build_network(Checkpoint(lenet_tensors()), batch=-1)
    from netdef.build import BuildConfig

    engine = build(network, BuildConfig(batch=(1, 4, 8)), definition={"architecture": "lenet", "options": {}})
    return Engine(bytes(range(256)), engine.metadata).to_bytes()


def _touch(tensors) -> None:
    """Read every byte of every array (a view past the end of a mapped file would fault here)."""
    for array in tensors.values():
        np.ascontiguousarray(array).tobytes()


def _fuzz(read, seed: bytes, suffix: str, folder: Path, cases: range, name: str = "case") -> list[str]:
    """Run ``read(path)`` on each mutated case; the failures (non-netdef exceptions, timeouts)."""
    failures = []
    path = folder / f"{name}{suffix}"
    for case in cases:
        mutation, data = mutate(seed, suffix if suffix.startswith(".") else ".npz", case)
        path.write_bytes(data)
        try:
            with time_bound(SECONDS_PER_CASE):
                read(path)
        except NetdefError:
            pass
        except CaseTimeout as exc:
            failures.append(f"case {case} ({mutation}): {exc}")
        except Exception as exc:  # noqa: BLE001 - this is what the fuzz test looks for
            where = traceback.extract_tb(exc.__traceback__)[-1]
            failures.append(f"case {case} ({mutation}): {type(exc).__name__}: {exc} at {where.filename}:{where.lineno}")
    return failures


def _read_safetensors(path: Path) -> None:
    from netdef.weights.safetensors_io import read_safetensors

    _touch(read_safetensors(path))


def _read_npz(path: Path) -> None:
    from netdef.weights.npz_io import read_npz

    _touch(read_npz(path))


def _read_wts(path: Path) -> None:
    from netdef.weights.wts_io import read_wts

    _touch(read_wts(path))


def _read_engine(path: Path) -> None:
    """Load, then do what info, run, refit --check and bench do with the metadata (on the CPU)."""
    from netdef.cli.build_cmds import info
    from netdef.engine import Engine
    from netdef.refit import refit_plan
    from netdef.runtime.iospec import EngineIO

    engine = Engine.load(path)
    info(path)
    EngineIO.from_metadata(engine.metadata, source=str(path))
    refit_plan(engine, lenet_tensors(), engine_source=str(path))


READERS = {
    ".safetensors": _read_safetensors,
    ".npz": _read_npz,
    "compressed.npz": _read_npz,
    ".wts": _read_wts,
    ".engine": _read_engine,
}


@pytest.mark.parametrize("suffix", list(READERS))
def test_fuzz_reader_raises_only_netdef_errors(seeds, tmp_path, capsys, suffix):
    failures = _fuzz(READERS[suffix], seeds[suffix], suffix, tmp_path, range(CASES))
    capsys.readouterr()
    assert not failures, f"{len(failures)} of {CASES} cases:\n" + "\n".join(failures[:20])


@pytest.mark.slow
@pytest.mark.parametrize("suffix", list(READERS))
def test_fuzz_reader_raises_only_netdef_errors_many(seeds, tmp_path, capsys, suffix):
    failures = _fuzz(READERS[suffix], seeds[suffix], suffix, tmp_path, range(CASES, CASES + SLOW_CASES))
    capsys.readouterr()
    assert not failures, f"{len(failures)} of {SLOW_CASES} cases:\n" + "\n".join(failures[:20])


# ---------------------------------------------------------------------------------------------- .pth


_PTH_RUNNER = """
import json, resource, sys, traceback
from pathlib import Path
import numpy, torch  # loaded before the baseline: the fallback reader may import torch
from netdef.errors import NetdefError
from netdef.weights.torch_io import read_torch
from tests.fuzzing import CaseTimeout, time_bound
folder = Path(sys.argv[1])
files = sorted(folder.glob("*.pth"))
read_torch(folder / "seed.pth")  # warm up (imports, torch.load's first call)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
failures = []
for path in files:
    try:
        with time_bound({seconds}):
            for array in read_torch(path).values():
                numpy.ascontiguousarray(array).tobytes()
    except NetdefError:
        pass
    except CaseTimeout as exc:
        failures.append(f"{{path.name}}: {{exc}}")
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        failures.append(f"{{path.name}}: {{type(exc).__name__}}: {{exc}} at {{where.filename}}:{{where.lineno}}")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"failures": failures, "growth": peak - base, "largest": max(p.stat().st_size for p in files)}}))
"""


def _pth_seed(folder: Path, legacy: bool = False) -> bytes:
    """A small state dict with views, half types and an integer buffer; ``legacy``: torch's pre-1.6 format."""
    import torch

    base = torch.arange(48, dtype=torch.float32).reshape(6, 8)
    state = {
        "conv.weight": base,
        "rows": base[2:5],
        "column": base[:, 3],
        "expanded": torch.ones(3, dtype=torch.float16).expand(4, 3),
        "half": torch.arange(5, dtype=torch.bfloat16),
        "bn.num_batches_tracked": torch.tensor(3),
    }
    path = folder / ("legacy.pth" if legacy else "seed.pth")
    torch.save({"state_dict": state, "epoch": 3}, path, _use_new_zipfile_serialization=not legacy)
    return path.read_bytes()


def _fuzz_pth(folder: Path, cases: range) -> dict:
    seed, legacy = _pth_seed(folder), _pth_seed(folder, legacy=True)
    cases_folder = folder / "cases"
    cases_folder.mkdir()
    (cases_folder / "seed.pth").write_bytes(seed)
    for case in cases:  # one case in four mutates a legacy (non-zip) file, read by torch.load
        mutation, data = mutate(legacy if case % 4 == 3 else seed, ".pth", case)
        (cases_folder / f"{case:07d}-{mutation}.pth").write_bytes(data)
    code = _PTH_RUNNER.format(seconds=SECONDS_PER_CASE).replace("sys.argv[1]", repr(str(cases_folder)))
    done = run_python(code, timeout=120 + SECONDS_PER_CASE * len(cases))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_pth(result: dict, cases: int) -> None:
    assert not result["failures"], f"{len(result['failures'])} of {cases} cases:\n" + "\n".join(result["failures"][:20])
    bound = 2 * result["largest"] + (64 << 20)
    assert result["growth"] <= bound, f"peak RSS grew by {result['growth']} bytes, bound {bound}"


def test_fuzz_pth_raises_only_netdef_errors_within_memory_bounds(tmp_path):
    _check_pth(_fuzz_pth(tmp_path, range(CASES)), CASES)


@pytest.mark.slow
def test_fuzz_pth_raises_only_netdef_errors_within_memory_bounds_many(tmp_path):
    _check_pth(_fuzz_pth(tmp_path, range(CASES, CASES + SLOW_CASES)), SLOW_CASES)
