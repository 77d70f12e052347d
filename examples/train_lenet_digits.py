"""Train TensorRT's MNIST LeNet on scikit-learn's digits and save it as safetensors.

The data come from :func:`netdef.datasets.digits_split` (8x8 scans upscaled to 28x28);
see weights/README.md for the provenance of the shipped ``weights/lenet_digits.safetensors``.

    python examples/train_lenet_digits.py --epochs 30 --seed 0 -o weights/lenet_digits.safetensors

Training is deterministic: fixed seeds, ``torch.use_deterministic_algorithms(True)`` and a
single CPU thread, so the same torch version on the same kind of CPU gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]

LEARNING_RATE = 1e-3
BATCH_SIZE = 64
MAX_SHIFT = 2  # augmentation: random translation of up to this many pixels each way
TEST_FRACTION = 0.2


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each ``(N, 1, H, W)`` image by a random whole-pixel offset, filling with zeros."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (n, h, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (n, 1, w)
    return padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y``."""
    model.eval()
    return (model(x).argmax(1) == y).double().mean().item()


def train(epochs: int, seed: int) -> tuple[nn.Module, float, float]:
    """Train LeNet with Adam on the digits split of ``seed``; return it and (train, test) accuracy."""
    if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing netdef
        sys.path.insert(0, str(REPO_ROOT))
    from netdef.cli.torch_models import lenet_module  # TensorRT's MNIST LeNet, in PyTorch
    from netdef.datasets import digits_split

    torch.manual_seed(seed)
    split = digits_split(seed=seed, test_fraction=TEST_FRACTION)
    x_train, y_train = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    x_test, y_test = torch.from_numpy(split.x_test), torch.from_numpy(split.y_test)

    model = lenet_module()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            idx = order[start : start + BATCH_SIZE]
            xb = random_shift(x_train[idx], MAX_SHIFT, gen) if MAX_SHIFT else x_train[idx]
            loss = nn.functional.cross_entropy(model(xb), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1:3d}/{epochs}  loss {total / len(order):.4f}")
    return model, accuracy(model, x_train, y_train), accuracy(model, x_test, y_test)


def sort_metadata(path: Path) -> None:
    """Rewrite a safetensors header with its metadata keys sorted, so the file's bytes are reproducible.

    ``save_file`` writes ``__metadata__`` in hash-map order, which varies from run to run; tensor
    entries and data are already in a fixed order and are left untouched.
    """
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + blob[8 + n :])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, default=Path("weights/lenet_digits.safetensors"))
    args = parser.parse_args(argv)

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    began = time.perf_counter()
    model, train_acc, test_acc = train(args.epochs, args.seed)
    seconds = time.perf_counter() - began
    print(f"train accuracy    {train_acc:.4f}")
    print(f"held-out accuracy {test_acc:.4f}")
    print(f"training time     {seconds:.1f} s")

    tensors = {name: t.detach().to(torch.float32).contiguous() for name, t in model.state_dict().items()}
    metadata = {
        "dataset": "sklearn.datasets.load_digits via netdef.datasets.digits_split",
        "seed": str(args.seed),
        "epochs": str(args.epochs),
        "test_fraction": str(TEST_FRACTION),
        "optimizer": f"Adam(lr={LEARNING_RATE})",
        "batch_size": str(BATCH_SIZE),
        "max_shift": str(MAX_SHIFT),
        "train_accuracy": repr(train_acc),
        "heldout_accuracy": repr(test_acc),
        "torch_version": torch.__version__,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.output), metadata=metadata)
    sort_metadata(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
