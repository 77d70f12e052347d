"""What an Ultralytics checkpoint says besides its weights: the model's YAML and its class names.

Read from a ``.pt`` through netdef's restricted unpickler (:mod:`netdef.weights.torch_io`, which maps
Ultralytics' classes to the inert records of :mod:`netdef.weights.ultralytics_pickle`), or from a
``.safetensors`` file's metadata.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netdef.errors import CheckpointError
from netdef.weights.torch_io import read_torch_zip
from netdef.weights.ultralytics_pickle import YAML_METADATA_KEY, pickled_model


def read_model_config(path: Path | str) -> dict[str, Any] | None:
    """The Ultralytics YAML configuration (a dict) stored with the weights in ``path``, or None.

    ``.pt``/``.pth``: the pickled model's ``yaml`` attribute (read as above, nothing executed).
    ``.safetensors``: the metadata entry ``ultralytics_yaml`` (JSON).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        text = safetensors_metadata(path).get(YAML_METADATA_KEY)
        if text is None:
            return None
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{path}: metadata {YAML_METADATA_KEY!r} is not valid JSON: {exc}") from None
        return config if isinstance(config, dict) else None
    if suffix in (".pt", ".pth"):
        try:
            model = pickled_model(read_torch_zip(path))
        except Exception:  # noqa: BLE001 - not a torch zip this reader handles: no configuration to offer
            return None
        config = model.__dict__.get("yaml") if model is not None else None
        return dict(config) if isinstance(config, Mapping) else None
    return None


def read_class_names(path: Path | str) -> dict[int, str] | None:
    """The class names stored with the weights (``model.names`` or the ``names`` metadata entry), or None."""
    path = Path(path)
    names: Any = None
    if path.suffix.lower() == ".safetensors":
        text = safetensors_metadata(path).get("names")
        names = json.loads(text) if text else None
    elif path.suffix.lower() in (".pt", ".pth"):
        try:
            model = pickled_model(read_torch_zip(path))
        except Exception:  # noqa: BLE001
            return None
        names = model.__dict__.get("names") if model is not None else None
    if isinstance(names, Mapping):
        return {int(k): str(v) for k, v in names.items()}
    if isinstance(names, list):
        return dict(enumerate(map(str, names)))
    return None


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` strings of a ``.safetensors`` file's header (empty when it has none)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            return {}
        (length,) = struct.unpack("<Q", raw)
        if length > 100 * 1024 * 1024:
            return {}
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
