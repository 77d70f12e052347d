"""Network definitions: functions that define a network, registered by name, found again from an engine.

A definition is a function ``define(net, x, **options)`` that adds layers to a
:class:`~netdef.Network` and returns the output tensor (or a tuple of them). :func:`register`
makes it an :class:`Architecture`: its name, one sample's input shape, its output names, and the
keyword options it takes with their defaults.

>>> @netdef.register("mynet", input_shape=(3, 32, 32))
... def mynet(net, x, width: int = 16):
...     return net.linear(net.flatten(net.relu(net.conv2d(x, "conv", width, kernel_size=3))), "fc", 10)

A definition is named by its registered name, by ``path/to/mynet.py:mynet`` or by
``package.module:mynet`` (:func:`resolve`). Every network an :class:`Architecture` defines carries a
:class:`DefinitionRecord` (``network.definition``), which :func:`netdef.build` stores in the engine, so
that :func:`redefine` can define the same network again from the engine and a checkpoint: refit plans,
the reference executor, ``inspect`` and ``explain`` all go through it.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from netdef.errors import DefinitionError, NetdefError
from netdef.weights import Checkpoint
from netdef.weights.fingerprint import changed_since, fingerprint

if TYPE_CHECKING:
    from netdef.network import Network

Definition = Callable[..., Any]
CheckpointLike = str | os.PathLike | Mapping[str, np.ndarray]

# --------------------------------------------------------------------------------------- Architecture


@dataclass(frozen=True)
class Architecture:
    """A registered definition: how to define one network, and what it needs."""

    name: str
    define: Definition
    input_shape: tuple[int, ...]
    """Shape of one sample (without the batch axis)."""
    output: str | tuple[str, ...]
    """The output's name, or the names of the tensors ``define`` returns, in order."""
    description: str = ""
    input_name: str = "input"
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword options the definition accepts, with their defaults."""
    family: str = ""
    """The group ``netdef list`` shows it in (by default the defining module's short name)."""

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.output,) if isinstance(self.output, str) else tuple(self.output)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise one :class:`DefinitionError` naming every unknown option and listing the valid ones."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise DefinitionError(
                f"architecture {self.name!r} has no option(s) {', '.join(unknown)}; "
                f"valid options: {_describe_options(self.options)}"
            )

    def parse_options(self, pairs: Sequence[str]) -> dict[str, Any]:
        """``["width=32", "bias=false"]`` -> ``{"width": 32, "bias": False}``, typed from the defaults.

        Every malformed pair, unknown option and value of the wrong type is listed in one error.
        """
        parsed: dict[str, Any] = {}
        problems = []
        for pair in pairs:
            key, sep, text = pair.partition("=")
            key = key.strip()
            if not sep or not key:
                problems.append(f"{pair!r}: expected key=value")
            elif key not in self.options:
                problems.append(f"unknown option {key!r}")
            else:
                try:
                    parsed[key] = _typed(text.strip(), self.options[key])
                except ValueError as exc:
                    problems.append(f"option {key}={text!r}: {exc}")
        if problems:
            raise DefinitionError(
                f"architecture {self.name!r}: bad --option; valid options: {_describe_options(self.options)}",
                problems,
            )
        return parsed

    def build_network(
        self,
        checkpoint: Mapping[str, np.ndarray],
        *,
        precision: str = "fp32",
        batch: int = -1,
        io_dtype: str = "fp32",
        calibration: Any = None,
        check: bool = True,
        input_shape: Sequence[int] | None = None,
        **options: Any,
    ) -> Network:
        """Define this architecture on ``checkpoint``; ``batch=-1`` makes the batch dynamic.

        ``input_shape``: one sample's shape when it differs from the registered one (e.g. another
        image size); it is recorded with the network.

        ``calibration``: activation scales for ``precision="int8"`` (see :mod:`netdef.calibration`).
        The network carries its :class:`DefinitionRecord` (``network.definition``).

        Raises one :class:`~netdef.CheckpointError` listing every missing or mismatched weight
        (with ``check=False`` the problems stay in ``network.problems``).
        """
        self.check_options(options)
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint(checkpoint)
        from netdef.network import Network

        net = Network(ckpt, precision=precision, io_dtype=io_dtype, name=self.name, calibration=calibration)
        shape = (batch, *(self.input_shape if input_shape is None else tuple(int(d) for d in input_shape)))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported as problems
            y = self.define(net, net.input(self.input_name, shape), **options)
        if isinstance(y, Mapping):  # outputs named by the definition itself (they may depend on its options)
            named = list(y.items())
        else:
            tensors = tuple(y) if isinstance(y, (tuple, list)) else (y,)
            if len(tensors) != len(self.outputs):
                raise DefinitionError(
                    f"architecture {self.name!r} returned {len(tensors)} tensor(s), "
                    f"it registered outputs {self.outputs}"
                )
            named = list(zip(self.outputs, tensors, strict=True))
        for name, tensor in named:
            net.output(tensor, name)
        net.weight_table.settle()  # every weight converted, every problem recorded
        net.definition = DefinitionRecord.of(self, options, {self.input_name: list(shape)}, net, ckpt, calibration)
        if check:
            net.check()
        return net

    def expected_weights(self, **options: Any) -> dict[str, tuple[int, ...]]:
        """The checkpoint entries this architecture reads, with their shapes (no checkpoint needed)."""
        from netdef.network import Network

        net = Network({}, name=self.name)
        self.define(net, net.input(self.input_name, (1, *self.input_shape)), **options)
        return dict(net.expected)

    def zeros(self, **options: Any) -> dict[str, np.ndarray]:
        """A checkpoint of zeros with every entry this architecture reads (to look at shapes and settings)."""
        return {name: np.zeros(shape, np.float32) for name, shape in self.expected_weights(**options).items()}

    def num_parameters(self, *, declared: bool = True, **options: Any) -> int:
        """How many values the checkpoint entries it reads hold (BatchNorm statistics included).

        With its default options, a count declared for this name (:func:`declare_parameters`) answers
        without defining the network; ``declared=False`` always counts through a definition.
        """
        defaults = all(self.options.get(k, object()) == v for k, v in options.items())
        if declared and defaults and self.name in _DECLARED_PARAMETERS:
            return _DECLARED_PARAMETERS[self.name]
        return sum(int(np.prod(s)) for s in self.expected_weights(**options).values())


def _describe_options(options: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} (default {v!r})" for k, v in sorted(options.items())) or "none"


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def _typed(text: str, default: Any) -> Any:
    """``text`` as the type of ``default`` (bool, int, float, str); a None default takes any of them."""
    lowered = text.lower()
    if isinstance(default, bool):
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ValueError("expected true or false")
    if default is None:
        if lowered in ("none", "true", "false"):
            return {"none": None, "true": True, "false": False}[lowered]
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected an integer") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    return text


# --------------------------------------------------------------------------------------- the registry

_REGISTRY: dict[str, Architecture] = {}
_BY_FUNCTION: dict[Definition, Architecture] = {}
_LOADERS: list[Callable[[], None]] = []
_FINDERS: list[Callable[[str], None]] = []


def register(
    name: str,
    *,
    input_shape: tuple[int, ...],
    output: str | tuple[str, ...] = "logits",
    description: str = "",
    input_name: str = "input",
    family: str | None = None,
) -> Callable[[Definition], Definition]:
    """Register ``define(net, x, **options) -> output tensor(s)`` as architecture ``name``.

    ``define`` may also return ``{output name: tensor}`` when its outputs depend on its options.

    Keyword parameters with defaults become its options; the docstring's first line its description;
    ``family`` defaults to the defining module's short name.
    """

    def decorate(define: Definition) -> Definition:
        params = list(inspect.signature(define).parameters.values())[2:]
        options = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        doc = description or (inspect.getdoc(define) or "").split("\n")[0]
        architecture = Architecture(
            name,
            define,
            tuple(input_shape),
            output if isinstance(output, str) else tuple(output),
            doc,
            input_name=input_name,
            options=options,
            family=family or _module_short_name(define),
        )
        _REGISTRY[name] = architecture
        _BY_FUNCTION[define] = architecture
        return define

    return decorate


_DECLARED_PARAMETERS: dict[str, int] = {}


def declare_parameters(counts: Mapping[str, int]) -> None:
    """Declare architectures' parameter counts with default options (``netdef list`` shows them without
    defining every network in TensorRT); a test checks them against the definitions."""
    _DECLARED_PARAMETERS.update({str(k): int(v) for k, v in counts.items()})


def add_loader(loader: Callable[[], None]) -> None:
    """Call ``loader()`` (which registers more definitions) the first time a name is not found."""
    if loader not in _LOADERS:
        _LOADERS.append(loader)


def add_finder(finder: Callable[[str], None]) -> None:
    """Call ``finder(name)`` first when ``name`` is not registered: it may register just that definition
    (one module imported, where a loader imports them all)."""
    if finder not in _FINDERS:
        _FINDERS.append(finder)


def _run_loaders() -> None:
    while _LOADERS:
        _LOADERS.pop(0)()


def get(name: str) -> Architecture:
    """The architecture registered as ``name``."""
    for finder in _FINDERS if name not in _REGISTRY else ():
        finder(name)
    if name not in _REGISTRY:
        _run_loaders()
    try:
        return _REGISTRY[name]
    except KeyError:
        near = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise DefinitionError(
            f"unknown architecture {name!r}{hint} (known: {', '.join(sorted(_REGISTRY)) or 'none'}; "
            "a definition in your own code is named path/to/file.py:function or package.module:function)"
        ) from None


def names() -> list[str]:
    _run_loaders()
    return sorted(_REGISTRY)


def registered() -> list[Architecture]:
    """Every registered architecture, by family then name."""
    _run_loaders()
    return sorted(_REGISTRY.values(), key=lambda a: (a.family, a.name))


def is_definition_spec(text: str) -> bool:
    """Whether ``text`` names a definition (registered name, ``file.py:fn`` or ``module:fn``) rather than a file."""
    if ":" in text and not Path(text).is_file():
        return True
    return not Path(text).is_file() and text in names()


def resolve(spec: str) -> Architecture:
    """The architecture ``spec`` names: a registered name, ``path/to/file.py:function`` or ``module:function``."""
    if ":" not in spec:
        return get(spec)
    where, _, function = spec.rpartition(":")
    if not where or not function:
        raise DefinitionError(f"{spec!r}: expected path/to/file.py:function or package.module:function")
    module = _load_file(Path(where)) if _looks_like_file(where) else _import(where, spec)
    return _architecture_in(module, function, spec)


def _looks_like_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or os.sep in where or Path(where).is_file()


def _import(module_name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise DefinitionError(f"{spec}: cannot import module {module_name!r}: {exc}") from None


_FILES: dict[Path, ModuleType] = {}
_USER_PREFIX = "_netdef_user_"


def _load_file(path: Path) -> ModuleType:
    """Import a Python file by path (once per process), its folder on ``sys.path`` for its own imports."""
    path = path.expanduser().resolve()
    if path in _FILES:
        return _FILES[path]
    if not path.is_file():
        raise DefinitionError(f"{path}: no such definition file")
    tag = hashlib.blake2b(str(path).encode(), digest_size=4).hexdigest()
    name = f"{_USER_PREFIX}{path.stem}_{tag}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DefinitionError(f"{path}: not a Python file that can be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise DefinitionError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    _FILES[path] = module
    return module


def _architecture_in(module: ModuleType, function: str, spec: str) -> Architecture:
    found = getattr(module, function, None)
    if isinstance(found, Architecture):
        return found
    if found is None:
        public = [n for n, v in vars(module).items() if callable(v) and v in _BY_FUNCTION]
        raise DefinitionError(
            f"{spec}: {module.__file__ or module.__name__} has no {function!r}"
            + (f" (registered there: {', '.join(public)})" if public else "")
        )
    if not callable(found) or found not in _BY_FUNCTION:
        raise DefinitionError(
            f"{spec}: {function} is not registered: decorate it with "
            f"@netdef.register({function!r}, input_shape=(...)) to give its input shape and output name"
        )
    return _BY_FUNCTION[found]


def _module_short_name(define: Definition) -> str:
    module = define.__module__
    if module == "__main__" or module.startswith(_USER_PREFIX):
        source = inspect.getsourcefile(define)
        return Path(source).stem if source else module
    return module.rpartition(".")[2]


# --------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class DefinitionRecord:
    """How to define a network again: which function, with which options, inputs, precision and weights.

    Stored in every engine's metadata as ``definition``. ``module`` is set when the function is
    importable by module name, ``file`` (absolute) always when it lives in a file, ``architecture``
    when it is registered by name.
    """

    architecture: str | None
    function: str | None = None
    module: str | None = None
    file: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, list[int]] = field(default_factory=dict)
    """Input name -> shape as declared (``-1``: dynamic)."""
    precision: str = "fp32"
    io_dtype: str = "fp32"
    calibration: str | dict[str, float] | None = None
    """An absolute calibration cache path, or the per-tensor scales themselves."""
    checkpoint: str | None = None
    """The checkpoint's absolute path (None for an in-memory checkpoint)."""
    checkpoint_fingerprint: dict[str, Any] | None = None
    """``{"size", "xxh3_128"}`` of the checkpoint file (``"blake2b"`` in older engines) when the engine was built."""

    @classmethod
    def of(
        cls,
        architecture: Architecture,
        options: Mapping[str, Any],
        inputs: Mapping[str, list[int]],
        network: Network,
        checkpoint: Checkpoint,
        calibration: Any,
    ) -> DefinitionRecord:
        define = architecture.define
        module = define.__module__
        source = inspect.getsourcefile(define)
        return cls(
            architecture=architecture.name,
            function=define.__name__,
            module=None if module == "__main__" or module.startswith(_USER_PREFIX) else module,
            file=str(Path(source).resolve()) if source else None,
            options=dict(options),
            inputs=dict(inputs),
            precision=network.precision.name,
            io_dtype=network.io_precision.name,
            calibration=_calibration_record(calibration),
            checkpoint=str(checkpoint.path.resolve()) if checkpoint.path is not None else None,
        )

    @property
    def spec(self) -> str:
        """The definition as the command line names it."""
        if self.file and self.function and not self.module:
            return f"{self.file}:{self.function}"
        return self.architecture or f"{self.module}:{self.function}"

    def to_json(self) -> dict[str, Any]:
        """The record with the checkpoint's fingerprint taken now (what an engine stores)."""
        record = asdict(self)
        if self.checkpoint and record["checkpoint_fingerprint"] is None and Path(self.checkpoint).is_file():
            record["checkpoint_fingerprint"] = fingerprint(self.checkpoint)
        return record

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DefinitionRecord:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**{"architecture": None, **known})

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> DefinitionRecord | None:
        """The record of an engine's metadata; format 1 engines (name, options, checkpoint) are completed
        from the metadata's precision, I/O dtype and inputs. None for a network defined ad hoc."""
        definition = metadata.get("definition")
        if not definition:
            return None
        inputs = {t["name"]: list(t["shape"]) for t in metadata.get("io", []) if t.get("mode") == "input"}
        defaults = {
            "precision": metadata.get("precision", "fp32"),
            "io_dtype": metadata.get("io_dtype", "fp32"),
            "inputs": inputs,
        }
        return cls.from_json({**defaults, **definition})

    def resolve(self) -> Architecture:
        """The architecture this record names. Its module (or file) is imported first when the name is not
        registered yet; the registered name decides, the function's name serves unnamed records."""
        if self.architecture and self.architecture in _REGISTRY:
            return _REGISTRY[self.architecture]
        if not self.function and not self.architecture:
            raise DefinitionError("the record names no definition function (a network defined ad hoc)")
        module = self._module() if self.function else None
        if self.architecture:
            return get(self.architecture)
        if module is None:
            raise DefinitionError(
                f"cannot find the definition {self.function!r}: module {self.module!r} cannot be imported "
                f"and file {self.file!r} does not exist"
            )
        return _architecture_in(module, str(self.function), self.spec)

    def _module(self) -> ModuleType | None:
        importable = None
        if self.module:
            try:
                importable = importlib.util.find_spec(self.module)
            except (ImportError, ValueError):
                importable = None
        same_file = (
            importable is not None
            and self.file is not None
            and importable.origin is not None
            and Path(importable.origin).resolve() == Path(self.file)
        )
        if importable is not None and (same_file or not self.file or not Path(self.file).is_file()):
            return _import(str(self.module), self.spec)
        if self.file and Path(self.file).is_file():
            return _load_file(Path(self.file))
        return None


def _calibration_record(calibration: Any) -> str | dict[str, float] | None:
    if calibration is None:
        return None
    if isinstance(calibration, (str, os.PathLike)):
        return str(Path(calibration).resolve())
    scales = getattr(calibration, "scales", calibration)
    return {str(k): float(v) for k, v in scales.items()} if isinstance(scales, Mapping) else None


# --------------------------------------------------------------------------------------- defining again


def record_of(engine_or_metadata: Any) -> DefinitionRecord | None:
    """The :class:`DefinitionRecord` of an :class:`~netdef.Engine` or its metadata dict (None: ad hoc)."""
    metadata = getattr(engine_or_metadata, "metadata", engine_or_metadata)
    return DefinitionRecord.from_metadata(metadata or {})


AD_HOC_HINT = (
    "the engine records no definition function (its network was assembled ad hoc in Python), so it cannot be "
    "defined again here; define it in Python and use netdef.refit.refit_plan_from_network(engine, network), or "
    "register the function with @netdef.register and build from it"
)


def redefine(
    engine_or_record: Any,
    checkpoint: CheckpointLike | None = None,
    *,
    source: str = "the engine",
    check: bool = True,
) -> Network:
    """Define an engine's network again from its :class:`DefinitionRecord`, on ``checkpoint``.

    ``engine_or_record``: an :class:`~netdef.Engine`, its metadata, or a record. Without ``checkpoint``
    the recorded checkpoint is used, and refused when it has changed since the engine was built (its
    size and digest). With ``check=False`` weight problems stay in ``network.problems``.

    Raises one :class:`DefinitionError` listing every reason it cannot: an ad hoc network, a definition
    that cannot be found, an unknown option, a checkpoint that is missing, unreadable or changed.
    """
    record = engine_or_record if isinstance(engine_or_record, DefinitionRecord) else record_of(engine_or_record)
    if record is None:
        raise DefinitionError(f"{source}: {AD_HOC_HINT}")
    problems: list[str] = []
    architecture = None
    try:
        architecture = record.resolve()
        architecture.check_options(record.options)
    except NetdefError as exc:
        problems.append(str(exc))
    ckpt = None
    try:
        ckpt = _checkpoint_for(record, checkpoint)
    except NetdefError as exc:
        problems.append(str(exc))
    if problems or architecture is None or ckpt is None:
        raise DefinitionError(f"{source}: cannot define its network {record.spec!r} again", problems)
    shape = record.inputs.get(architecture.input_name) or [-1, *architecture.input_shape]
    calibration = record.calibration if record.precision == "int8" else None
    return architecture.build_network(
        ckpt,
        precision=record.precision,
        batch=int(shape[0]),
        input_shape=shape[1:],
        io_dtype=record.io_dtype,
        calibration=calibration,
        check=check,
        **record.options,
    )


def _checkpoint_for(record: DefinitionRecord, checkpoint: CheckpointLike | None) -> Checkpoint:
    if checkpoint is not None:
        if isinstance(checkpoint, Checkpoint):
            return checkpoint
        if isinstance(checkpoint, Mapping):
            return Checkpoint(checkpoint)
        return Checkpoint.load(Path(checkpoint))
    if not record.checkpoint:
        raise DefinitionError("built from a checkpoint it does not record; give the checkpoint with --weights")
    path = Path(record.checkpoint)
    if not path.is_file():
        raise DefinitionError(f"built from {path}, which is not a file here; give the checkpoint with --weights")
    changed = changed_since(path, record.checkpoint_fingerprint)
    if changed:
        raise DefinitionError(f"{changed}; refusing to use it: give the checkpoint with --weights to use it anyway")
    return Checkpoint.load(path)
