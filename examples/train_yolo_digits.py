"""Train a small real detector: YOLOv8n on handwritten digits pasted onto real photos.

The detection set is built here from images scikit-learn ships (no download): the 1,797
scanned digits of ``sklearn.datasets.load_digits`` (8x8, 10 classes) are upscaled, tinted and
alpha-blended onto random crops of its two sample photos (``china.jpg``, ``flower.jpg``).
Every box is the digit's ink extent. The digit scans are split by sample into training and
held-out pools, so the held-out images contain digits the detector never saw.

Training uses the ultralytics package (a training-time tool only; netdef never imports it):
``yolov8n.yaml`` from scratch, 320x320 images, CPU. The trained weights are written as
fp16 ``.safetensors`` under Ultralytics' own parameter names, with the model's YAML
configuration, the class names and the held-out mAP50 in the file's metadata:

    python examples/train_yolo_digits.py -o weights/yolov8n_digits.safetensors

The shipped file's provenance and figures are in weights/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

IMAGE_SIZE = 320
CLASS_NAMES = [str(d) for d in range(10)]
SAMPLE_PHOTOS = ("china.jpg", "flower.jpg")


# ---------------------------------------------------------------------------- the data set


def digit_pools(seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The digit scans (values 0..1) split 80/20, stratified: (train images, labels), (held-out ...)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = digits.images / 16.0, digits.target
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    return (x_train, y_train), (x_test, y_test)


def render_digit(scan: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """An 8x8 scan upscaled to ``size`` x ``size`` (bilinear, values 0..1) and the box of its ink (x0, y0, x1, y1)."""
    from PIL import Image

    image = Image.fromarray((scan * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
    alpha = np.asarray(image, np.float32) / 255.0
    rows, cols = np.nonzero(scan > 0.1)
    cell = size / 8.0
    box = (int(cols.min() * cell), int(rows.min() * cell), int(np.ceil((cols.max() + 1) * cell)),
           int(np.ceil((rows.max() + 1) * cell)))  # fmt: skip
    return alpha, box


def random_background(photos: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A random square crop (at least 200 pixels a side) of a sample photo, resized to the image size."""
    from PIL import Image

    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape[:2]
    side = int(rng.integers(200, min(h, w) + 1))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(photo[y0 : y0 + side, x0 : x0 + side]).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    return np.asarray(crop, np.float32)


def compose(photos, scans, labels, rng) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """One image with 3..8 non-overlapping digits and its YOLO labels (class, cx, cy, w, h normalised)."""
    image = random_background(photos, rng)
    taken: list[tuple[int, int, int, int]] = []
    targets = []
    for _ in range(int(rng.integers(3, 9))):
        size = int(rng.integers(32, 97))
        for _attempt in range(20):
            x, y = int(rng.integers(0, IMAGE_SIZE - size)), int(rng.integers(0, IMAGE_SIZE - size))
            if all(x + size <= a or a + s <= x or y + size <= b or b + s <= y for a, b, s, _ in taken):
                break
        else:
            continue
        index = int(rng.integers(len(scans)))
        alpha, (bx0, by0, bx1, by1) = render_digit(scans[index], size)
        region = image[y : y + size, x : x + size]
        brightness = region.mean()
        ink = rng.uniform(0, 70, 3) if brightness > 110 else rng.uniform(185, 255, 3)  # contrast with the photo
        strength = rng.uniform(0.75, 1.0)
        region[:] = region * (1 - strength * alpha[..., None]) + ink * (strength * alpha[..., None])
        taken.append((x, y, size, 0))
        x0, y0, x1, y1 = x + bx0, y + by0, x + bx1, y + by1
        targets.append(
            (int(labels[index]), (x0 + x1) / 2 / IMAGE_SIZE, (y0 + y1) / 2 / IMAGE_SIZE,
             (x1 - x0) / IMAGE_SIZE, (y1 - y0) / IMAGE_SIZE)
        )  # fmt: skip
    return np.clip(image, 0, 255).astype(np.uint8), targets


def write_dataset(root: Path, n_train: int, n_val: int, seed: int) -> Path:
    """Write images/ and labels/ for train and val under ``root``; return the data YAML's path."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    photos = [load_sample_image(name) for name in SAMPLE_PHOTOS]
    (train_scans, train_labels), (val_scans, val_labels) = digit_pools(seed)
    rng = np.random.default_rng(seed)
    for split, count, scans, labels in (
        ("train", n_train, train_scans, train_labels),
        ("val", n_val, val_scans, val_labels),
    ):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, targets = compose(photos, scans, labels, rng)
            Image.fromarray(image).save(root / "images" / split / f"{i:05d}.png")
            lines = [f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}" for c, cx, cy, w, h in targets]
            (root / "labels" / split / f"{i:05d}.txt").write_text("\n".join(lines) + "\n")
    names = "\n".join(f"  {i}: '{n}'" for i, n in enumerate(CLASS_NAMES))
    data = root / "digits.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data


def sample_scene(seed: int) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """The demo image, a held-out composite (digits from the held-out pool), and its labels."""
    from sklearn.datasets import load_sample_image

    photos = [load_sample_image(name) for name in SAMPLE_PHOTOS]
    _, (scans, labels) = digit_pools(seed)
    return compose(photos, scans, labels, np.random.default_rng(seed + 1000))


def write_sample_image(path: Path, seed: int) -> None:
    from PIL import Image

    Image.fromarray(sample_scene(seed)[0]).save(path)


# ---------------------------------------------------------------------------- training


def torchvision_stand_in() -> None:
    """Let ultralytics' validator ``import torchvision`` where the installed wheel cannot load.

    The registry's torchvision wheel fails to import next to the CPU build of torch ("operator
    torchvision::nms does not exist"). Detection training needs only ``torchvision.ops.nms``,
    which the stand-in provides with ultralytics' own NMS (it matches torchvision's exactly).
    """
    import sys
    import types

    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        from ultralytics.utils.nms import TorchNMS

        stand_in = types.ModuleType("torchvision")
        stand_in.ops = types.SimpleNamespace(nms=TorchNMS.nms)
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision"] = stand_in


def train(data: Path, workdir: Path, epochs: int, hours: float, seed: int, batch: int, device: str, workers: int):
    from ultralytics import YOLO

    torchvision_stand_in()

    model = YOLO("yolov8n.yaml")
    model.train(
        data=str(data), epochs=epochs, time=hours, imgsz=IMAGE_SIZE, batch=batch, device=device, workers=workers,
        seed=seed, deterministic=True, pretrained=False, amp=False, plots=False, val=False, project=str(workdir),
        name="run", exist_ok=True, fliplr=0.0, close_mosaic=2, patience=0, verbose=False, optimizer="AdamW", lr0=0.002,
        warmup_epochs=1,
    )  # fmt: skip
    return workdir / "run" / "weights" / "last.pt"


def evaluate(weights: Path, data: Path, device: str) -> float:
    """mAP at IoU 0.5 on the held-out images."""
    from ultralytics import YOLO

    torchvision_stand_in()
    metrics = YOLO(str(weights)).val(data=str(data), imgsz=IMAGE_SIZE, batch=16, device=device, plots=False,
                                     workers=0, verbose=False)  # fmt: skip
    return float(metrics.box.map50)


def export(weights: Path, output: Path, metadata: dict[str, str]) -> None:
    """Ultralytics' checkpoint -> fp16 safetensors under its parameter names, YAML and class names as metadata."""
    import torch
    from safetensors.torch import save_file

    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)  # our own training output
    model = checkpoint["model"]
    state = {k: v.half().contiguous() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    metadata = {
        **metadata,
        "ultralytics_yaml": json.dumps(model.yaml),
        "names": json.dumps({int(k): v for k, v in model.names.items()}),
        "stride": json.dumps([float(s) for s in model.stride]),
    }
    save_file(state, str(output), metadata=metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("weights/yolov8n_digits.safetensors"))
    parser.add_argument("--sample", type=Path, default=Path("weights/digits_scene.png"), help="demo image to write")
    parser.add_argument("--workdir", type=Path, default=Path("out/yolo_digits"))
    parser.add_argument("--epochs", type=int, default=40, help="at most this many epochs ...")
    parser.add_argument("--hours", type=float, default=0.4, help="... and at most this long (ultralytics' time=)")
    parser.add_argument("--train-images", type=int, default=500)
    parser.add_argument("--val-images", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA device index such as 0")
    parser.add_argument("--workers", type=int, default=2, help="data-loader processes")
    args = parser.parse_args()

    os.environ.setdefault("YOLO_OFFLINE", "1")
    start = time.time()
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    data = write_dataset(args.workdir / "data", args.train_images, args.val_images, args.seed)
    print(f"data set: {args.train_images} train + {args.val_images} held-out images in {time.time() - start:.0f} s")
    last = train(data, args.workdir, args.epochs, args.hours, args.seed, args.batch, args.device, args.workers)
    map50 = evaluate(last, data, args.device)
    minutes = (time.time() - start) / 60
    print(f"held-out mAP50 {map50:.4f}; {minutes:.1f} min in all")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    recipe = {"heldout_map50": f"{map50:.4f}", "max_epochs": args.epochs, "max_hours": args.hours, "seed": args.seed,
              "device": args.device, "train_images": args.train_images, "val_images": args.val_images,
              "batch": args.batch, "training_minutes": f"{minutes:.1f}"}  # fmt: skip
    export(last, args.output, {k: str(v) for k, v in recipe.items()})
    write_sample_image(args.sample, args.seed)
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes) and {args.sample}")


if __name__ == "__main__":
    main()
