"""Ultralytics checkpoints (``yolov8n.pt``, ``yolo11s.pt`` ...) read without ultralytics, running no pickled code.

Ultralytics saves the whole ``DetectionModel`` pickled: ``{"model": DetectionModel, "ema": ...,
"train_args": {...}, ...}``. netdef's restricted unpickler (:mod:`netdef.weights.torch_io`) reads
it with every class of ``ultralytics.*`` and ``torch.nn.modules.*`` replaced by an inert
:class:`ModuleRecord`: a plain object that keeps the pickled attributes (``_parameters``,
``_buffers``, ``_modules``, ``yaml`` ...) and imports, calls and runs nothing. Any other global
(``os.system``, ``builtins.eval`` ...) is still refused.

From the records come the state dict under Ultralytics' own names
(``model.22.cv2.0.0.conv.weight``) and the model's YAML configuration (a plain dict). The same
configuration travels in a ``.safetensors`` file's metadata under ``ultralytics_yaml`` (JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np

_RECORD_MODULES = ("ultralytics.", "torch.nn.modules.")
YAML_METADATA_KEY = "ultralytics_yaml"


class ModuleRecord:
    """An inert stand-in for one pickled ``nn.Module``: its class name and its pickled attributes.

    Unpickling builds it with ``__new__`` and fills ``__dict__`` (pickle's NEWOBJ and BUILD);
    called as a function (REDUCE) it only records the arguments.
    """

    pickled_class = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_call_arguments"] = (args, kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ values)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, Mapping):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<record of {self.pickled_class}>"

    def state_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Parameters and persistent buffers of this module and its children, named as ``nn.Module.state_dict``."""
        found: dict[str, np.ndarray] = {}
        attributes = self.__dict__
        non_persistent = attributes.get("_non_persistent_buffers_set") or set()
        for name, value in (attributes.get("_parameters") or {}).items():
            if isinstance(value, np.ndarray):
                found[prefix + name] = value
        for name, value in (attributes.get("_buffers") or {}).items():
            if isinstance(value, np.ndarray) and name not in non_persistent:
                found[prefix + name] = value
        for name, child in (attributes.get("_modules") or {}).items():
            if isinstance(child, ModuleRecord):
                found.update(child.state_dict(f"{prefix}{name}."))
        return found


@cache
def module_record(module: str, name: str) -> type[ModuleRecord] | None:
    """The inert record class standing in for global ``module.name``, or None when it is not a module class."""
    if not module.startswith(_RECORD_MODULES) or not name.isidentifier() or not name[:1].isupper():
        return None
    return type(name, (ModuleRecord,), {"pickled_class": f"{module}.{name}", "__module__": __name__})


def pickled_model(obj: Any) -> ModuleRecord | None:
    """The model record inside an unpickled checkpoint: Ultralytics' ``ema`` if present, else ``model``; or the
    object itself when it is a record."""
    if isinstance(obj, ModuleRecord):
        return obj
    if isinstance(obj, Mapping):
        for key in ("ema", "model"):
            if isinstance(obj.get(key), ModuleRecord):
                return obj[key]
    return None


# ---------------------------------------------------------------------------- the model's configuration
