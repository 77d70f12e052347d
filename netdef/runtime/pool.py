"""A thread-safe pool of execution contexts: each call takes a free one and gives it back.

An ``IExecutionContext`` must not run two inferences at once; an engine may have several
contexts. The pool hands each caller a context nobody else holds, blocks while all are busy,
and can take all of them at once (``acquire_all``) for work that must see no inference in
flight, such as refitting weights.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

from netdef.errors import RunnerClosedError

T = TypeVar("T")


class ContextPool(Generic[T]):
    """Hands out ``items`` one caller at a time (FIFO); ``acquire_all`` waits for every item."""

    def __init__(self, items: Sequence[T], name: str = "runner") -> None:
        if not items:
            raise ValueError("a context pool needs at least one item")
        self.name = name
        self._items = list(items)
        self._free: deque[T] = deque(self._items)
        self._cond = threading.Condition()
        self._exclusive_waiting = 0
        self._closed = False

    @property
    def size(self) -> int:
        return len(self._items)

    @property
    def items(self) -> list[T]:
        return list(self._items)

    @property
    def in_use(self) -> int:
        with self._cond:
            return len(self._items) - len(self._free)

    @property
    def closed(self) -> bool:
        return self._closed

    def _wait(self, ready, timeout: float | None, what: str) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not ready():
            if self._closed:
                raise RunnerClosedError(f"{self.name} is closed")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"{self.name}: no {what} became free within {timeout} s ({self.size} in the pool)")
            self._cond.wait(remaining)
        if self._closed:
            raise RunnerClosedError(f"{self.name} is closed")

    @contextmanager
    def acquire(self, timeout: float | None = None) -> Iterator[T]:
        """Take a free item for the duration of the ``with`` block."""
        with self._cond:
            self._wait(lambda: self._closed or (self._free and not self._exclusive_waiting), timeout, "context")
            item = self._free.popleft()
        try:
            yield item
        finally:
            with self._cond:
                self._free.append(item)
                self._cond.notify_all()

    @contextmanager
    def acquire_all(self, timeout: float | None = None) -> Iterator[list[T]]:
        """Take every item (waiting for running calls to finish; new calls wait meanwhile)."""
        with self._cond:
            self._exclusive_waiting += 1
            try:
                self._wait(lambda: self._closed or len(self._free) == len(self._items), timeout, "exclusive access")
            finally:
                self._exclusive_waiting -= 1
            taken = list(self._free)
            self._free.clear()
        try:
            yield taken
        finally:
            with self._cond:
                self._free.extend(taken)
                self._cond.notify_all()

    def close(self, timeout: float | None = None) -> list[T]:
        """Wait for calls in flight, refuse new ones, and return the items (for the owner to free)."""
        with self._cond:
            self._exclusive_waiting += 1
            try:
                self._wait(lambda: self._closed or len(self._free) == len(self._items), timeout, "idle moment")
            except RunnerClosedError:
                return []
            finally:
                self._exclusive_waiting -= 1
            self._closed = True
            self._cond.notify_all()
            items, self._items = self._items, []
            self._free.clear()
            return items
