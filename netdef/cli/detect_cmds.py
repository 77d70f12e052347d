"""``netdef detect``: object detection on images with a YOLO engine or definition, boxes drawn to PNGs."""

from pathlib import Path
from typing import Annotated, Any

import typer

from netdef.cli.app import app, console, new_table


def _class_names(checkpoint: Path | None) -> dict[int, str]:
    from netdef.weights.ultralytics_config import read_class_names

    return (read_class_names(checkpoint) if checkpoint is not None and checkpoint.is_file() else None) or {}


def _read_image(path: Path) -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("netdef detect reads images with Pillow: pip install pillow") from None
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image")
    with Image.open(path) as image:
        import numpy as np

        return np.asarray(image.convert("RGB"))


@app.command()
def detect(
    target: Annotated[str, typer.Argument(help="A netdef engine file, or an architecture name (give --weights).")],
    images: Annotated[list[Path], typer.Argument(help="Images to run on (anything Pillow reads).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the PNGs with boxes drawn.")],
    weights: Annotated[Path | None, typer.Option("--weights", "-w", help="Checkpoint (for an architecture).")] = None,
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp32 or fp16 (an architecture).")] = "fp32",
    imgsz: Annotated[int, typer.Option(help="Input size (an architecture; an engine's is its own).")] = 640,
    conf: Annotated[float, typer.Option(help="Score threshold (an architecture).")] = 0.25,
    iou: Annotated[float, typer.Option(help="NMS IoU threshold (an architecture).")] = 0.7,
    max_det: Annotated[int, typer.Option(help="Most boxes per image (an architecture).")] = 300,
    executor: Annotated[
        str, typer.Option(help="auto (TensorRT on a supported GPU, else the reference executor), reference, tensorrt.")
    ] = "auto",
) -> None:
    """Detect objects: letterbox each image, run NMS inside the network, draw the boxes, print a table.

    Runs the reference executor on the CPU, or TensorRT where a supported GPU is present.
    """
    from netdef import backend
    from netdef.cli.targets import is_engine
    from netdef.runtime import detection as det

    if not is_engine(target) and weights is None:
        raise ValueError(f"{target} is an architecture name: give its checkpoint with --weights")
    if executor not in ("auto", "reference", "tensorrt"):
        raise ValueError(f"--executor must be auto, reference or tensorrt, not {executor!r}")
    use_tensorrt = executor == "tensorrt" or (executor == "auto" and backend.capabilities().can_run)
    network, engine, checkpoint = _define(target, weights, precision, imgsz, conf, iou, max_det)
    size = int(network.io_tensors()[0]["shape"][-1])
    names = _class_names(checkpoint)
    output.mkdir(parents=True, exist_ok=True)
    table = new_table("image", "class", "score", "x1", "y1", "x2", "y2", box=None, pad_edge=False)
    for path in images:
        image = _read_image(path)
        boxed = det.letterbox(image, size)
        inputs = {network.io_tensors()[0]["name"]: det.to_input([boxed])}
        outputs = _run_tensorrt(target, engine, network, inputs) if use_tensorrt else _run_reference(network, inputs)
        found = det.detections(outputs, [boxed], names)[0]
        target_png = output / f"{path.stem}.png"
        det.draw(image, found, target_png)
        for d in found:
            table.add_row(str(path), d.label, f"{d.score:.3f}", *(f"{v:.1f}" for v in d.box))
        console.print(f"{path}: {len(found)} detection(s) -> {target_png}")
    console.print(table)


def _define(target: str, weights: Path | None, precision: str, imgsz: int, conf: float, iou: float, max_det: int):
    """(network, engine or None, checkpoint path) for an engine file or a definition."""
    from netdef.cli import targets

    if targets.is_engine(target):
        defined = targets.define(target, weights)
        return defined.network, defined.engine, Path(defined.checkpoint)
    from netdef.weights import Checkpoint

    assert weights is not None
    arch = targets.architecture(target)
    options = {"conf": conf, "iou": iou, "max_det": max_det, "nms": True}
    shape = (3, imgsz, imgsz)
    network = arch.build_network(Checkpoint.load(weights), precision=precision, batch=1, input_shape=shape, **options)
    return network, None, weights


def _run_reference(network, inputs: dict) -> dict:
    from netdef.reference import run

    return run(network.trt_network, inputs).outputs


def _run_tensorrt(target: str, engine, network, inputs: dict) -> dict:
    from netdef.cli.reference_cmds import _run_tensorrt as run_with_tensorrt

    return run_with_tensorrt(target, engine, network, inputs)
