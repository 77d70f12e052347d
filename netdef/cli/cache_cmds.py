"""``netdef cache list`` and ``netdef cache prune``: the engine cache (``netdef build --cache DIR``)."""

import time
from pathlib import Path
from typing import Annotated

import typer

from netdef.cli.app import app, console, new_table

cache_app = typer.Typer(help="Manage the engine cache (`netdef build --cache DIR` or NETDEF_CACHE=DIR).")
app.add_typer(cache_app, name="cache")

CacheDir = Annotated[Path | None, typer.Option("--dir", help="Cache directory (default: $NETDEF_CACHE).")]


def _cache(directory: Path | None):
    from netdef.cache import ENV_VAR, EngineCache, cache_dir
    from netdef.errors import NetdefError

    root = cache_dir(directory)
    if root is None:
        raise NetdefError(f"no cache directory: pass --dir DIR or set {ENV_VAR}")
    return EngineCache(root)


@cache_app.command("list")
def list_entries(directory: CacheDir = None) -> None:
    """List cached engines, most recently used first, with their size and total."""
    from netdef.cli.build_cmds import human_bytes

    cache = _cache(directory)
    entries = cache.entries()
    table = new_table("key", "network", "precision", "batch", "size", "last used", box=None, pad_edge=False)
    for e in entries:
        batch = (e.metadata.get("profile") or {}).get("batch")
        table.add_row(
            e.key[:16],
            e.label,
            str(e.metadata.get("precision", "?")),
            ":".join(map(str, batch)) if batch else "static",
            human_bytes(e.size),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used)),
        )
    console.print(table)
    console.print(f"{len(entries)} engine(s), {human_bytes(sum(e.size for e in entries))} in {cache.root}")


@cache_app.command("prune")
def prune(
    max_size: Annotated[str, typer.Option("--max-size", help="Keep at most this much, e.g. 5G or 500M.")],
    directory: CacheDir = None,
) -> None:
    """Remove the least recently used engines until the cache fits in --max-size."""
    from netdef.build import parse_size
    from netdef.cli.build_cmds import human_bytes

    cache = _cache(directory)
    removed = cache.prune(parse_size(max_size))
    console.print(
        f"removed {len(removed)} engine(s), {human_bytes(sum(e.size for e in removed))}; "
        f"{human_bytes(sum(e.size for e in cache.entries()))} left in {cache.root}"
    )
