"""Seeded mutations of checkpoint and engine files, for tests/test_fuzz_readers.py.

Byte-level mutations (bit flips, truncation, insertion, deletion, overwrites with boundary
values) plus structure-aware ones that rewrite a format's header or metadata and keep its
length fields, CRCs and hashes valid, so that the reader gets past its integrity checks and
meets the malformed structure itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import signal
import struct
import zipfile
from collections.abc import Callable
from contextlib import contextmanager

BOUNDARY = [0, 1, -1, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, 2**100, -(2**63)]
JUNK_JSON = [None, True, 1.5, -1, "x", [], {}, [[[]]], {"a": {}}, 2**64, "F32", [2**63, 2**63], "\u0000"]


# ---------------------------------------------------------------------------------------------- bytes


def bit_flips(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def insert(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.randint(1, 64)) + data[i:]


def delete(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 64) :]


def overwrite(data: bytes, rng: random.Random) -> bytes:
    """A little-endian boundary value (0, 2**31, 2**63, ...) written over 4 or 8 bytes."""
    out = bytearray(data)
    width = rng.choice((4, 8))
    i = rng.randrange(max(1, len(out) - width))
    value = rng.choice(BOUNDARY) % (1 << (8 * width))
    out[i : i + width] = value.to_bytes(width, "little")
    return bytes(out[: len(data)])


BYTE_MUTATIONS = [bit_flips, truncate, insert, delete, overwrite]


# ---------------------------------------------------------------------------------------------- JSON


def mutate_json(value, rng: random.Random, depth: int = 0):
    """A copy of a JSON value with one node replaced, deleted, or nested very deeply."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.25:
            out[rng.choice(["", "\u00e9", "__metadata__", key + "x"])] = rng.choice(JUNK_JSON)
        else:
            out[key] = mutate_json(value[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value and rng.random() < 0.7:
        out = list(value)
        i = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.2:
            del out[i]
        elif roll < 0.3:
            out.append(rng.choice(BOUNDARY))
        else:
            out[i] = mutate_json(out[i], rng, depth + 1)
        return out
    roll = rng.random()
    if roll < 0.05:
        return _deep(rng.randint(1000, 200_000))
    if roll < 0.5:
        return rng.choice(BOUNDARY)
    return rng.choice(JUNK_JSON)


class _Deep:
    """JSON text nested ``depth`` times (built as text: json.dumps would recurse)."""

    def __init__(self, depth: int):
        self.depth = depth


def _deep(depth: int) -> _Deep:
    return _Deep(depth)


def dumps(value) -> bytes:
    text = json.dumps(value, default=lambda v: f"__DEEP__{v.depth}" if isinstance(v, _Deep) else str(v))
    while '"__DEEP__' in text:
        start = text.index('"__DEEP__')
        end = text.index('"', start + 1)
        depth = int(text[start + len('"__DEEP__') : end])
        text = text[:start] + "[" * depth + "]" * depth + text[end + 1 :]
    return text.encode()


# ---------------------------------------------------------------------------------------------- formats


def safetensors_rewrite(data: bytes, rng: random.Random) -> bytes:
    (length,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8 : 8 + length])
    encoded = dumps(mutate_json(header, rng))
    return struct.pack("<Q", len(encoded)) + encoded + data[8 + length :]


def _rezip(data: bytes, rewrite: Callable[[str, bytes], bytes | None], compress: int | None = None) -> bytes:
    """The archive with each member passed through ``rewrite(name, bytes)`` (None drops it); valid CRCs."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            member = rewrite(info.filename, source.read(info))
            if member is not None:
                target.writestr(info.filename, member, compress_type=compress or info.compress_type)
    return out.getvalue()


def npz_rewrite(data: bytes, rng: random.Random) -> bytes:
    """Rewrite one member's .npy header dict (descr, shape, fortran_order), padded as NumPy pads it."""
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    victim = rng.choice(names)
    compress = zipfile.ZIP_DEFLATED if rng.random() < 0.3 else None

    def rewrite(name: str, member: bytes) -> bytes:
        if name != victim or member[:6] != b"\x93NUMPY":
            return member
        (hlen,) = struct.unpack_from("<H", member, 8)
        header = member[10 : 10 + hlen].decode("latin-1")
        roll = rng.random()
        if roll < 0.3:
            header = header.replace("'shape': (", f"'shape': ({rng.choice(BOUNDARY)}, ", 1)
        elif roll < 0.5:
            header = header.replace(
                "'descr': '", f"'descr': '{rng.choice(['|O', '<U', 'V', '>c', '<f', 'S0', '<M8'])}", 1
            )
        elif roll < 0.6:
            header = header.replace("False", rng.choice(["True", "1", "None", "(", "'x'"]), 1)
        elif roll < 0.7:
            header = "{" + "(" * rng.randint(100, 5000)
        else:
            i = rng.randrange(len(header))
            header = header[:i] + rng.choice("(){}[]',:0123456789xL\\") + header[i + 1 :]
        body = header.rstrip("\n ").encode("latin-1", "replace")
        body += b" " * (-(len(body) + 11) % 64) + b"\n"
        return member[:8] + struct.pack("<H", len(body)) + body + member[10 + hlen :]

    return _rezip(data, rewrite, compress)


def pth_rewrite(data: bytes, rng: random.Random) -> bytes:
    """Mutate the pickle (opcode bytes), a storage's length, or compress a storage; valid CRCs."""
    roll = rng.random()
    compress = zipfile.ZIP_DEFLATED if roll < 0.15 else None

    def rewrite(name: str, member: bytes) -> bytes | None:
        if name.endswith("data.pkl") and roll >= 0.15:
            mutation = rng.choice([bit_flips, overwrite, insert, delete, _swap_pickle_numbers])
            return mutation(member, rng)
        if "/data/" in name and roll < 0.4 and rng.random() < 0.5:
            return member[: rng.randrange(len(member) + 1)] if rng.random() < 0.5 else member * rng.randint(2, 4)
        return member

    return _rezip(data, rewrite, compress)


def _swap_pickle_numbers(data: bytes, rng: random.Random) -> bytes:
    """Replace a BININT1 argument (sizes, strides, offsets, numels) by a 4-byte BININT boundary value."""
    positions = [i for i in range(len(data) - 1) if data[i] == ord("K")]
    if not positions:
        return bit_flips(data, rng)
    i = rng.choice(positions)
    value = rng.choice([0, 255, 2**31 - 1, -1, -(2**31)])
    return data[:i] + b"J" + struct.pack("<i", value) + data[i + 2 :]


def wts_rewrite(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    words = lines[i].split(b" ")
    roll = rng.random()
    if roll < 0.3 and words:
        j = rng.randrange(len(words))
        words[j] = rng.choice(
            [b"", b"-1", b"99999999999999999999", b"zzzzzzzz", b"7f800000", b"\xff\xfe", b"1e5", b"0x10"]
        )
    elif roll < 0.5:
        words = words[: rng.randrange(len(words) + 1)]
    elif roll < 0.6:
        lines.insert(i, rng.choice([b"", b"   ", b"name", b"name 1", b"name 1 00000000 00000000", b"\t\r"]))
    elif roll < 0.8:
        lines[0] = str(rng.choice(BOUNDARY)).encode()
    else:
        words = [w.replace(b"0", b"\t0") for w in words]
    lines[i] = b" ".join(words)
    return b"\n".join(lines)


def engine_rewrite(data: bytes, rng: random.Random) -> bytes:
    """Rewrite the metadata JSON (or the plan) and recompute the lengths and SHA-256s."""
    _, version, length, _ = struct.unpack_from("<8sII32s", data)
    metadata = json.loads(data[48 : 48 + length])
    plan = data[48 + length :]
    if rng.random() < 0.15:
        plan = rng.choice(BYTE_MUTATIONS)(plan, rng) if plan else plan
        metadata["plan_bytes"] = len(plan)
        metadata["plan_sha256"] = hashlib.sha256(plan).hexdigest()
    else:
        metadata = mutate_json(metadata, rng)
    encoded = dumps(metadata) if rng.random() < 0.95 else rng.randbytes(rng.randint(0, 100))
    header = struct.pack("<8sII32s", b"NETDEF\x89\n", version, len(encoded), hashlib.sha256(encoded).digest())
    return header + encoded + plan


STRUCTURED = {
    ".safetensors": safetensors_rewrite,
    ".npz": npz_rewrite,
    ".pth": pth_rewrite,
    ".wts": wts_rewrite,
    ".engine": engine_rewrite,
}


def mutate(data: bytes, suffix: str, seed: int) -> tuple[str, bytes]:
    """(mutation name, mutated bytes) for case ``seed``: half byte-level, half structure-aware."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        mutation = rng.choice(BYTE_MUTATIONS)
    else:
        mutation = STRUCTURED[suffix]
    try:
        return mutation.__name__, mutation(data, rng)
    except (ValueError, KeyError, zipfile.BadZipFile, struct.error, json.JSONDecodeError):
        return "bit_flips", bit_flips(data, rng)


# ---------------------------------------------------------------------------------------------- bounds


class CaseTimeout(BaseException):
    """A fuzz case ran past its time bound (a hang)."""


@contextmanager
def time_bound(seconds: float):
    """Raise :class:`CaseTimeout` in the main thread after ``seconds``."""

    def expire(signum, frame):
        raise CaseTimeout(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
