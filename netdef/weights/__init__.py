"""Checkpoints: read-only mappings from parameter name to NumPy array, whatever the file format."""

from netdef.weights.checkpoint import Checkpoint, load_checkpoint, reader_for, supported_suffixes

__all__ = ["Checkpoint", "load_checkpoint", "reader_for", "supported_suffixes"]
