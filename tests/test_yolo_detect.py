"""``netdef detect`` with the shipped digits detector, and letterboxing against Ultralytics' ``LetterBox``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from cli_runner import netdef

from netdef.runtime.detection import letterbox, scale_boxes

REPO = Path(__file__).resolve().parents[1]


def _training_script():
    spec = importlib.util.spec_from_file_location("train_yolo_digits", REPO / "examples" / "train_yolo_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_detect_finds_the_digits_of_the_shipped_image(monkeypatch, capsys, tmp_path):
    """Every pasted digit of the held-out demo image is found, with its class, by the shipped detector."""
    from PIL import Image

    image, targets = _training_script().sample_scene(0)
    assert np.array_equal(np.asarray(Image.open(REPO / "weights" / "digits_scene.png").convert("RGB")), image)
    weights, scene = REPO / "weights" / "yolov8n_digits.safetensors", REPO / "weights" / "digits_scene.png"
    args = ["detect", "yolov8n", "-w", weights, scene, "--imgsz", "320", "-o", tmp_path]
    code, out, err = netdef(monkeypatch, capsys, *args)
    assert code == 0, err
    assert (tmp_path / "digits_scene.png").is_file()
    rows = [line.split() for line in out.splitlines() if line.startswith(str(REPO / "weights"))][1:]
    found = [(int(r[1]), float(r[2]), *map(float, r[3:7])) for r in rows]
    assert len(found) == len(targets), out
    size = image.shape[0]
    for cls, cx, cy, w, h in targets:
        box = np.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]]) * size
        ious = [(_iou(box[0], np.array(f[2:])), f[0]) for f in found]
        best = max(ious)
        assert best[0] >= 0.5 and best[1] == cls, (cls, box, found)


def _iou(a, b):
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(rb - lt, 0, None))
    return inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)


@pytest.mark.parametrize(
    "size", [320, pytest.param(640, marks=pytest.mark.slow), pytest.param(256, marks=pytest.mark.slow)]
)
def test_letterbox_matches_ultralytics(size):
    """Same resized size, padding and placement as Ultralytics' LetterBox; pixels within 1 grey level."""
    try:
        from ultralytics.data.augment import LetterBox
    except ImportError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"the ultralytics package (the test oracle) is not importable: {exc}")
    from sklearn.datasets import load_sample_image

    for name in ("china.jpg", "flower.jpg"):
        image = load_sample_image(name)
        expected = LetterBox(new_shape=(size, size), auto=False)(image=image)
        boxed = letterbox(image, size)
        assert boxed.image.shape == expected.shape
        difference = np.abs(boxed.image.astype(int) - expected.astype(int))
        assert difference.max() <= 1, difference.max()
        left, top = boxed.pad
        assert (expected[:top] == 114).all() and (boxed.image[:top] == 114).all()
        corner = scale_boxes(np.array([[left, top, size - left, size - top]], np.float32), boxed)
        np.testing.assert_allclose(corner, [[0, 0, image.shape[1], image.shape[0]]], atol=1.0)


@pytest.mark.slow
def test_fp16_detections_agree_with_fp32_on_the_trained_detector():
    """The shipped detector in fp16 (decoding and NMS in fp32) finds >= 95% of its fp32 boxes (IoU >= 0.99, same
    class) on held-out scenes. (A network with random weights is chaotic enough that fp16 moves its boxes by
    tens of pixels, so trained weights are the meaningful check.)"""
    import architectures  # noqa: F401
    from netdef.definition import get
    from netdef.reference import run
    from netdef.runtime.detection import to_input
    from netdef.weights import Checkpoint

    script = _training_script()
    scenes = [letterbox(script.sample_scene(seed)[0], 320) for seed in range(1, 5)]
    inputs = {"input": to_input(scenes)}
    checkpoint = Checkpoint.load(REPO / "weights" / "yolov8n_digits.safetensors")
    results = {}
    for precision in ("fp32", "fp16"):
        net = get("yolov8n").build_network(checkpoint, precision=precision, batch=-1, input_shape=(3, 320, 320))
        results[precision] = run(net.trt_network, inputs).outputs
    matched = total = 0
    for i in range(len(scenes)):
        a, b = results["fp32"], results["fp16"]
        n, m = int(a["num_dets"][i, 0]), int(b["num_dets"][i, 0])
        for box, cls in zip(a["boxes"][i, :n], a["classes"][i, :n], strict=True):
            total += 1
            matched += any(
                _iou(box, other) >= 0.99 and c == cls
                for other, c in zip(b["boxes"][i, :m], b["classes"][i, :m], strict=True)
            )
    print(f"fp16 found {matched} of {total} fp32 boxes")
    assert total >= 12 and matched / total >= 0.95
