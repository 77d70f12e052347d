"""``netdef calibrate``: INT8 activation ranges measured on the CPU and written to a calibration cache.

``netdef build ARCH --precision int8 --calibration cache.json`` then builds the Q/DQ network with them.
"""

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from netdef.cli.app import app, console, err_console, new_table
from netdef.cli.build_cmds import Weights
from netdef.cli.targets import TARGET_HELP, Options, Strict


def load_calibration_data(path: Path, input_names: list[str]) -> dict[str, np.ndarray]:
    """A ``.npy`` array (the one input's samples) or a ``.npz`` (one array per input name) as input -> array."""
    from netdef.cli.arrays import load_arrays
    from netdef.errors import CalibrationError

    loaded = load_arrays(path, CalibrationError, "calibration sample")
    if isinstance(loaded, np.ndarray):
        if len(input_names) != 1:
            raise CalibrationError(
                f"{path}: one array given, the network has inputs {input_names}: use a .npz with one array per input"
            )
        return {input_names[0]: loaded}
    if len(loaded) == 1 and len(input_names) == 1:
        return {input_names[0]: next(iter(loaded.values()))}
    return loaded


@app.command()
def calibrate(
    arch: Annotated[str, typer.Argument(help=TARGET_HELP + ".")],
    weights: Weights,
    data: Annotated[
        Path, typer.Option("--data", "-d", help="Calibration samples: .npy (N, *input shape), or .npz per input.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Calibration cache (JSON) to write.")],
    method: Annotated[str, typer.Option("--method", "-m", help="max, percentile or entropy.")] = "entropy",
    percentile: Annotated[float, typer.Option(help="Percentile of |x| for --method percentile.")] = 99.99,
    bins: Annotated[int, typer.Option(help="Histogram bins (percentile, entropy).")] = 2048,
    batch_size: Annotated[int, typer.Option(help="Samples per reference-executor run.")] = 64,
    limit: Annotated[int | None, typer.Option(help="Use only the first N samples.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    option: Options = None,
    strict: Strict = False,
) -> None:
    """Measure INT8 activation ranges of ARCH on the CPU (NumPy reference executor) and write a cache."""
    from rich.progress import Progress

    from netdef.calibration import METHODS
    from netdef.calibration import calibrate as run_calibration
    from netdef.cli.targets import define
    from netdef.errors import CalibrationError
    from netdef.fileio import check_output

    inputs = [weights, data, arch if Path(arch).exists() else None]
    check_output(output, inputs)  # before any work: never over an input, never a FIFO or device
    if method not in METHODS:
        raise CalibrationError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    defined = define(arch, weights, precision="fp32", batch=-1, options=option, strict=strict)
    network, architecture = defined.network, defined.architecture
    names = [network.trt_network.get_input(i).name for i in range(network.trt_network.num_inputs)]
    arrays = load_calibration_data(data, names)
    if limit is not None:
        arrays = {name: array[:limit] for name, array in arrays.items()}
    with Progress(console=err_console, transient=True, disable=quiet) as bar:
        task = bar.add_task(f"calibrating {arch} ({method})", total=None)
        calibration = run_calibration(
            network,
            arrays,
            method,
            percentile=percentile,
            bins=bins,
            batch_size=batch_size,
            architecture=architecture.name,
            checkpoint=str(weights.resolve()),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    calibration.save(output, inputs)
    table = new_table("tensor", "feeds", "amax", "scale", box=None, pad_edge=False)
    scales = calibration.scales
    for name, amax in calibration.amax.items():
        table.add_row(name, ", ".join(calibration.consumers.get(name, [])), f"{amax:.6g}", f"{scales[name]:.6g}")
    console.print(table)
    console.print(
        f"[bold green]calibrated[/] {output}  {arch} {method} on {calibration.samples} samples from {data} "
        f"in {calibration.seconds:.1f} s; build with: netdef build {arch} -w {weights} -p int8 --calibration {output}"
        + "".join(f" -O {o}" for o in option or [])
    )
