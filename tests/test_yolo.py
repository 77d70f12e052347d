"""YOLOv8 / YOLO11 / YOLOv5u against Ultralytics itself: decoded output, in-engine NMS, checkpoints, builds.

The oracle (tests/yolo_oracle.py) is Ultralytics' ``DetectionModel`` with random weights and
BatchNorm statistics, run on real photos at 640x640; netdef's network runs in the reference
executor. Slow tests cover every family and scale.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cli_runner import needs_build
from yolo_oracle import (
    NUM_CLASSES,
    box_iou,
    oracle_model,
    pairwise_iou,
    photos,
    save_safetensors,
    save_ultralytics_pt,
    ultralytics_modules,
)

from netdef import backend
from netdef.build import BuildConfig, build
from netdef.definition import get
from netdef.errors import CheckpointError, NetdefError
from netdef.reference import run
from netdef.weights import Checkpoint

REPO = Path(__file__).resolve().parents[1]
SIZE = 640
DETECT_OUTPUT = {"yolov8": "model.22.out", "yolo11": "model.23.out", "yolov5": "model.24.out"}


def define_with_output0(arch: str, checkpoint, precision: str = "fp32", batch: int = -1, **options):
    """The NMS network, with the decoded prediction (Detect's output) marked as ``output0`` too."""
    import architectures  # noqa: F401  (registers the zoo)

    net = get(arch).build_network(checkpoint, precision=precision, batch=batch, **options)
    family = next(f for f in DETECT_OUTPUT if arch.startswith(f))
    layer = next(net.trt_network.get_layer(i) for i in range(net.num_layers)
                 if net.trt_network.get_layer(i).name == DETECT_OUTPUT[family])  # fmt: skip
    net.output(layer.get_output(0), "output0")
    return net


def compare_with_ultralytics(cfg: str, arch: str, tmp_path: Path, precision: str = "fp32") -> dict:
    """Run Ultralytics and netdef on the photos; the figures the tests assert on."""
    import torch

    _, non_max_suppression = ultralytics_modules()
    images = photos(SIZE)
    model = oracle_model(cfg, images)
    with torch.no_grad():
        reference = model(torch.from_numpy(images))[0]
    expected = [k.numpy() for k in non_max_suppression(reference, 0.25, 0.7, max_det=300)]
    checkpoint = Checkpoint.load(save_safetensors(model, tmp_path / f"{arch}.safetensors"))
    network = define_with_output0(arch, checkpoint, precision)  # keeps the weights TensorRT points to alive
    outputs = run(network.trt_network, {"input": images}).outputs
    reference = reference.numpy()
    return {"reference": reference, "expected": expected, "outputs": outputs}


def assert_output0(result: dict, tolerance: float) -> None:
    out, ref = result["outputs"]["output0"], result["reference"]
    assert out.shape == ref.shape == (2, 4 + NUM_CLASSES, 8400)
    box_error = np.abs(out[:, :4] - ref[:, :4]).max() / np.abs(ref[:, :4]).max()
    score_error = np.abs(out[:, 4:] - ref[:, 4:]).max() / np.abs(ref[:, 4:]).max()
    print(f"output0 relative error: boxes {box_error:.2e}, scores {score_error:.2e}")
    assert box_error <= tolerance and score_error <= tolerance


def assert_same_detections(result: dict) -> None:
    """Box for box: the same number, and each of Ultralytics' boxes paired one to one with a netdef box of IoU
    >= 0.99, the same class and a score within 1e-3 (in score order, except among boxes of equal score, whose
    order NMS leaves open); padding rows zero."""
    outputs = result["outputs"]
    kept = [len(expected) for expected in result["expected"]]
    assert sum(kept) >= 20 and min(kept) >= 1, f"the oracle should keep tens of boxes, kept {kept}"
    for i, expected in enumerate(result["expected"]):
        n = int(outputs["num_dets"][i, 0])
        assert n == len(expected), f"image {i}: netdef kept {n} boxes, Ultralytics {len(expected)}"
        boxes, scores, classes = outputs["boxes"][i, :n], outputs["scores"][i, :n], outputs["classes"][i, :n]
        iou = pairwise_iou(expected[:, :4], boxes)
        fits = (iou >= 0.99) & (expected[:, 5:6].astype(np.int32) == classes[None])
        fits &= np.abs(expected[:, 4:5] - scores[None]) <= 1e-3
        free = np.ones(n, bool)
        for row in range(len(expected)):
            candidates = np.flatnonzero(fits[row] & free)
            assert candidates.size, f"image {i}: Ultralytics' box {expected[row]} has no netdef match"
            free[candidates[np.argmax(iou[row, candidates])]] = False
        assert np.all(np.diff(scores) <= 0), "netdef's boxes are in decreasing score order"
        print(f"image {i}: {n} boxes, each matched (IoU >= 0.99, same class, score within 1e-3)")
        assert not outputs["boxes"][i, n:].any() and not outputs["scores"][i, n:].any()


def fraction_matched(result: dict) -> float:
    """Of Ultralytics' boxes, the fraction netdef also returns (IoU >= 0.99, same class), over both images."""
    outputs, matched, total = result["outputs"], 0, 0
    for i, expected in enumerate(result["expected"]):
        n = int(outputs["num_dets"][i, 0])
        iou = pairwise_iou(expected[:, :4], outputs["boxes"][i, :n])
        same_class = expected[:, 5:6].astype(np.int32) == outputs["classes"][i, :n][None]
        matched += int(((iou >= 0.99) & same_class).any(1).sum())
        total += len(expected)
    return matched / total


# ---------------------------------------------------------------------------- numerics against Ultralytics


def test_yolov8n_output0_and_nms_match_ultralytics(tmp_path):
    """fp32 on two real photos at 640x640: Detect's output within 1e-4, detections box for box."""
    result = compare_with_ultralytics("yolov8n.yaml", "yolov8n", tmp_path)
    assert_output0(result, 1e-4)
    assert_same_detections(result)


@pytest.mark.slow
@pytest.mark.parametrize(("cfg", "arch"), [("yolo11n.yaml", "yolo11n"), ("yolov5nu.yaml", "yolov5nu"),
                                           ("yolo11m.yaml", "yolo11m"), ("yolov8s.yaml", "yolov8s")])  # fmt: skip
def test_other_families_match_ultralytics(cfg, arch, tmp_path):
    result = compare_with_ultralytics(cfg, arch, tmp_path)
    assert_output0(result, 1e-4)
    assert_same_detections(result)


def test_greedy_nms_equals_ultralytics_on_clustered_boxes():
    """The in-engine NMS alone, on crowded clusters where suppression chains are long, for several seeds."""
    import torch

    from netdef.network import Network

    _, non_max_suppression = ultralytics_modules()
    batch, nc, anchors = 2, 3, 300
    net = Network({}, precision="fp32")
    outputs = net.greedy_nms(net.input("prediction", (-1, 4 + nc, anchors)), nc, max_det=100, candidates=200)
    for name, tensor in outputs.items():
        net.output(tensor, name)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        centres, pick = rng.uniform(0, 300, (batch, 2, 15)), rng.integers(0, 15, anchors)
        xy = centres[:, :, pick] + rng.normal(0, 2, (batch, 2, anchors))
        wh = 40 + rng.normal(0, 2, (batch, 2, anchors))
        prediction = np.concatenate([xy, wh, rng.uniform(0, 0.3, (batch, nc, anchors))], 1).astype(np.float32)
        expected = non_max_suppression(torch.from_numpy(prediction), 0.25, 0.7, max_det=100)
        got = run(net.trt_network, {"prediction": prediction}).outputs
        for i, kept in enumerate(expected):
            kept = kept.numpy()
            n = int(got["num_dets"][i, 0])
            assert n == len(kept) and len(kept) < (prediction[i, 4:].max(0) > 0.25).sum()  # something suppressed
            np.testing.assert_array_equal(got["boxes"][i, :n], kept[:, :4])
            np.testing.assert_array_equal(got["classes"][i, :n], kept[:, 5].astype(np.int32))


# ---------------------------------------------------------------------------- checkpoints


READER = """
import sys, json
sys.modules["ultralytics"] = None  # import ultralytics fails
{block_torch}
import numpy as np
from netdef.weights import Checkpoint
from netdef.weights.ultralytics_config import read_class_names, read_model_config
try:
    import ultralytics
    raise SystemExit("ultralytics was importable")
except ImportError:
    pass
path = sys.argv[1]
checkpoint = Checkpoint.load(path)
expected = np.load(sys.argv[2])
assert sorted(checkpoint) == sorted(expected.files), set(checkpoint) ^ set(expected.files)
for key in expected.files:
    np.testing.assert_array_equal(checkpoint[key], expected[key])
config = read_model_config(path)
print(json.dumps({{"tensors": len(checkpoint), "config": config, "names": read_class_names(path),
                  "modules": sorted(m for m, v in sys.modules.items() if v is not None
                              and m.startswith(("torch", "ultralytics")))}}))
"""


def _run_reader(tmp_path: Path, pt: Path, expected: Path, block_torch: bool) -> subprocess.CompletedProcess:
    script = tmp_path / "reader.py"
    script.write_text(READER.format(block_torch='sys.modules["torch"] = None' if block_torch else ""))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(script), str(pt), str(expected)], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def small_model():
    return oracle_model("yolov8n.yaml", photos(64), candidates=10)


def test_ultralytics_pt_read_without_ultralytics_or_torch(small_model, tmp_path):
    """The pickled DetectionModel (fp16, as Ultralytics saves it): state dict under Ultralytics' names and the
    YAML dict, read in a process where importing ultralytics (and torch) fails."""
    import json

    pt = save_ultralytics_pt(small_model, tmp_path / "yolov8n.pt")
    state = {k: v.detach().half().numpy() if v.is_floating_point() else v.numpy()
             for k, v in small_model.state_dict().items()}  # fmt: skip
    np.savez(tmp_path / "expected.npz", **state)
    done = _run_reader(tmp_path, pt, tmp_path / "expected.npz", block_torch=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["tensors"] == len(state) and "model.22.cv2.0.0.conv.weight" in state
    assert report["config"]["backbone"] == small_model.yaml["backbone"] and report["config"]["nc"] == NUM_CLASSES
    assert report["names"] == {str(i): str(i) for i in range(NUM_CLASSES)}
    assert report["modules"] == []


def test_malicious_pickle_in_a_yolo_checkpoint_is_refused(small_model, tmp_path):
    """A YOLO-shaped checkpoint that also carries os.system: refused, nothing runs (with and without torch)."""
    import torch

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    pt = tmp_path / "evil.pt"
    torch.save({"model": small_model, "train_args": Payload()}, pt)
    np.savez(tmp_path / "none.npz")
    for block_torch in (True, False):
        done = _run_reader(tmp_path, pt, tmp_path / "none.npz", block_torch)
        assert done.returncode != 0
        assert "refused" in done.stderr and "system" in done.stderr, done.stderr
    with pytest.raises(CheckpointError, match="refused"):
        Checkpoint.load(pt)
    assert not marker.exists()


def test_pt_and_safetensors_define_the_same_network(small_model, tmp_path):
    import architectures  # noqa: F401

    pt = save_ultralytics_pt(small_model, tmp_path / "m.pt", half=False)
    st = save_safetensors(small_model, tmp_path / "m.safetensors")
    nets = [get("yolov8n").build_network(Checkpoint.load(p), nms=False, input_shape=(3, 64, 64)) for p in (pt, st)]
    assert nets[0].weights.keys() == nets[1].weights.keys()
    for key in nets[0].weights:
        np.testing.assert_array_equal(nets[0].weights[key], nets[1].weights[key])
    assert nets[0].unused_keys() == [] and nets[0].io_tensors()[-1]["shape"] == [-1, 4 + NUM_CLASSES, 84]


def test_yaml_errors_are_clear(small_model, tmp_path):
    """An unknown module is one error naming it; a checkpoint of another scale says which one it is."""
    import json

    import architectures  # noqa: F401
    from netdef.weights.safetensors_io import write_safetensors

    config = json.loads(json.dumps(small_model.yaml))
    config["head"][2][2] = "C2fAttn"
    config["head"][5][2] = "RepNCSPELAN4"
    state = {k: v.numpy() for k, v in small_model.state_dict().items()}
    write_safetensors(state, tmp_path / "odd.safetensors", {"ultralytics_yaml": json.dumps(config)})
    with pytest.raises(NetdefError, match="module\\(s\\) netdef does not know: C2fAttn, RepNCSPELAN4"):
        get("yolov8n").build_network(Checkpoint.load(tmp_path / "odd.safetensors"))
    with pytest.raises(NetdefError, match="scale 'n'.*build it as yolov8n"):
        get("yolov8s").build_network(Checkpoint.load(save_safetensors(small_model, tmp_path / "n.safetensors")))


@pytest.mark.parametrize(
    ("cfg", "arch"),
    [("yolo11n.yaml", "yolo11n"), pytest.param("yolov8n.yaml", "yolov8n", marks=pytest.mark.slow),
     pytest.param("yolov5nu.yaml", "yolov5nu", marks=pytest.mark.slow),
     pytest.param("yolo11l.yaml", "yolo11l", marks=pytest.mark.slow)],
)  # fmt: skip
def test_parameter_names_match_ultralytics(cfg, arch):
    """The definition reads exactly the entries of Ultralytics' model built from the same YAML (80 classes)."""
    import architectures  # noqa: F401

    DetectionModel, _ = ultralytics_modules()
    model = DetectionModel(cfg, verbose=False)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    expected = get(arch).expected_weights(nms=False)
    assert expected == state, set(expected) ^ set(state)


# ---------------------------------------------------------------------------- TensorRT builds


def test_yolov8n_builds_with_nms_fp16_dynamic_batch():
    """The default network (decoding + NMS loop) builds with the backend, fp16, batch 1..8; outputs as documented."""
    import architectures  # noqa: F401

    needs_build()
    checkpoint = Checkpoint.load(REPO / "weights" / "yolov8n_digits.safetensors")
    net = get("yolov8n").build_network(checkpoint, precision="fp16", batch=-1, input_shape=(3, 320, 320))
    io = {t["name"]: (t["shape"], t["dtype"]) for t in net.io_tensors()}
    assert io == {
        "input": ([-1, 3, 320, 320], "float32"),
        "num_dets": ([-1, 1], "int32"),
        "boxes": ([-1, 300, 4], "float32"),
        "scores": ([-1, 300], "float32"),
        "classes": ([-1, 300], "int32"),
    }
    engine = build(net, BuildConfig(batch=(1, 4, 8)))
    assert len(engine.plan) > 1_000_000


SCALES = "nsmlx"


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("arch", [f"yolov8{s}" for s in SCALES] + [f"yolo11{s}" for s in SCALES])
def test_every_variant_builds(arch, precision):
    """Every scale of both families, with NMS, static batch 1 and dynamic batch 1..8 (zeros as weights)."""
    import architectures  # noqa: F401

    needs_build()
    definition = get(arch)
    zeros = Checkpoint(definition.zeros(nms=False))
    for batch, profile in ((1, None), (-1, (1, 4, 8))):
        net = definition.build_network(zeros, precision=precision, batch=batch)
        assert len(build(net, BuildConfig(batch=profile)).plan) > 0


def test_engine_outputs_on_a_gpu():
    """On a GPU the backend runs: the engine's detections equal the reference executor's."""
    caps = backend.capabilities()
    if not caps.can_run:
        pytest.skip(f"no GPU here that can run engines: {caps.reason}")
    import architectures  # noqa: F401
    from netdef.runtime import run_engine_file
    from netdef.runtime.detection import letterbox, to_input

    checkpoint = Checkpoint.load(REPO / "weights" / "yolov8n_digits.safetensors")
    net = get("yolov8n").build_network(checkpoint, precision="fp32", batch=1, input_shape=(3, 320, 320))
    from PIL import Image

    image = np.asarray(Image.open(REPO / "weights" / "digits_scene.png").convert("RGB"))
    inputs = {"input": to_input([letterbox(image, 320)])}
    expected = run(net.trt_network, inputs).outputs
    got = run_engine_file(build(net, BuildConfig()), inputs)
    n = int(expected["num_dets"][0, 0])
    assert int(got["num_dets"][0, 0]) == n
    assert box_iou(got["boxes"][0, :n], expected["boxes"][0, :n]).min() >= 0.99
    np.testing.assert_array_equal(got["classes"][0, :n], expected["classes"][0, :n])


def test_source_is_not_ultralytics_code():
    """Ultralytics is AGPL and a test oracle only: the library never imports it."""
    for path in [*(REPO / "netdef").rglob("*.py"), *(REPO / "architectures").rglob("*.py")]:
        text = textwrap.dedent(path.read_text())
        assert "import ultralytics" not in text and "from ultralytics" not in text, path
