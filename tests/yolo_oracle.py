"""Ultralytics as the oracle for the YOLO tests: a seeded ``DetectionModel`` and real photos.

The model has random weights, randomized BatchNorm statistics and its class biases set so that
about ``candidates`` anchors score above 0.25 (NMS then keeps tens of boxes). Images are
scikit-learn's two sample photos, centre-cropped square and resized to the network's size, with
+-1 grey level of noise: uniform areas (a letterbox pad, a clear sky) give many anchors exactly
equal scores, and among equal-scored overlapping boxes greedy NMS may keep any.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

NUM_CLASSES = 7


def ultralytics_modules():
    """(DetectionModel, non_max_suppression), or a pytest skip saying why ultralytics is unavailable."""
    try:
        from ultralytics.nn.tasks import DetectionModel
        from ultralytics.utils.nms import non_max_suppression
    except ImportError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"the ultralytics package (the test oracle) is not importable: {exc}")

    def nms(*args, **kwargs):
        # Ultralytics calls torchvision.ops.nms whenever torchvision is in sys.modules; tests/torchvision_models.py's
        # stand-in has no compiled ops, so the oracle takes Ultralytics' own NMS, as it does without torchvision.
        from torchvision_models import hidden_when_bare

        with hidden_when_bare():
            return non_max_suppression(*args, **kwargs)

    return DetectionModel, nms


def photos(size: int) -> np.ndarray:
    """scikit-learn's china.jpg and flower.jpg, centre squares resized to ``size``: (2, 3, size, size) in [0, 1]."""
    from sklearn.datasets import load_sample_image

    from netdef.runtime.preprocess import resize

    batch = []
    for name in ("china.jpg", "flower.jpg"):
        image = load_sample_image(name)
        h, w = image.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = resize(image[top : top + side, left : left + side], (size, size))
        batch.append(np.clip(np.rint(square), 0, 255).transpose(2, 0, 1))
    # +-1 grey level of seeded noise: china.jpg's flat sky otherwise gives rows of anchors exactly equal scores,
    # and greedy NMS may keep any of a run of equal-scored overlapping boxes.
    noise = np.random.default_rng(0).integers(-1, 2, (len(batch), 3, size, size))
    return (np.clip(np.stack(batch) + noise, 0, 255) / 255.0).astype(np.float32)


def oracle_model(cfg: str, images: np.ndarray, seed: int = 0, candidates: int = 150):
    """A seeded Ultralytics ``DetectionModel(cfg)`` in eval mode, biased to ~``candidates`` boxes per image above
    0.25, with random box-branch biases (boxes of many sizes)."""
    import torch

    DetectionModel, _ = ultralytics_modules()
    torch.manual_seed(seed)
    model = DetectionModel(cfg, nc=NUM_CLASSES, verbose=False).eval()
    g = torch.Generator().manual_seed(seed + 1)
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for module in batch_norms:  # statistics measured on the photos (well-scaled activations), then perturbed
            module.reset_running_stats()
            module.momentum = None
            module.weight.copy_(torch.rand(module.num_features, generator=g) * 0.4 + 0.8)
            module.bias.copy_(torch.randn(module.num_features, generator=g) * 0.1)
        model.train()
        model(torch.from_numpy(images))
        model.eval()
        for module in batch_norms:
            module.running_mean.add_(torch.randn(module.num_features, generator=g) * 0.05)
            module.running_var.mul_(torch.rand(module.num_features, generator=g) * 0.4 + 0.8)
        for branch in model.model[-1].cv2:  # varied box sizes (Ultralytics' init makes every DFL bin equal)
            branch[-1].bias.copy_(torch.randn(branch[-1].bias.shape, generator=g) * 0.5)
        heads = [branch[-1] for branch in model.model[-1].cv3]
        for head in heads:
            head.bias.zero_()
        logits = model(torch.from_numpy(images))[1]["scores"]  # the class branch before the sigmoid: (B, nc, A)
        best = logits.amax(1).flatten().sort(descending=True).values.double()
        # The conf threshold goes in the widest gap between the ~candidates best logits, so no box scores within
        # rounding error of it (a box at 0.25 +- 1e-7 would be kept by one implementation and not the other).
        lo, hi = int(candidates * len(images) * 0.8), int(candidates * len(images) * 1.2)
        ties = torch.nonzero(best[:-1] == best[1:]).flatten()  # equal scores (flat regions): kept below the threshold
        if len(ties) and int(ties[0]) <= hi:
            hi = max(int(ties[0]) - 1, 2)
            lo = min(lo, hi // 2)
        gaps = best[lo:hi] - best[lo + 1 : hi + 1]
        k = lo + int(gaps.argmax())
        threshold = (best[k] + best[k + 1]) / 2
        shift = float(torch.logit(torch.tensor(0.25, dtype=torch.float64)) - threshold)
        for head in heads:
            head.bias.fill_(shift)
    return model


def save_safetensors(model, path: Path) -> Path:
    """The model's state dict under Ultralytics' names, with its YAML in the metadata."""
    from netdef.weights.safetensors_io import write_safetensors

    state = {k: v.detach().numpy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    write_safetensors(state, path, {"ultralytics_yaml": json.dumps(model.yaml)})
    return path


def save_ultralytics_pt(model, path: Path, half: bool = True) -> Path:
    """The checkpoint as Ultralytics' trainer writes it: the whole model pickled (fp16) with its training state."""
    import copy

    import torch

    saved = copy.deepcopy(model)
    torch.save(
        {"model": saved.half() if half else saved, "ema": None, "optimizer": None, "epoch": -1,
         "train_args": {"imgsz": 640, "model": "yolov8n.yaml"}, "date": "2026-12-02", "version": "8.4.190"},
        path,
    )  # fmt: skip
    return path


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes, row by row."""
    lt, rb = np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, 2:], b[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 1)
    return inter / (np.prod(a[:, 2:] - a[:, :2], 1) + np.prod(b[:, 2:] - b[:, :2], 1) - inter)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` with every box of ``b``: (len(a), len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return box_iou(np.repeat(a, len(b), 0), np.tile(b, (len(a), 1))).reshape(len(a), len(b))
