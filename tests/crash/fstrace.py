"""The file operations of a process, recorded by ``fsshim.c``, and the disk states a
power loss could leave behind.

``build_shim`` compiles the shim with the machine's C compiler.  ``read_trace`` parses
its log.  ``disk_after`` rebuilds the files under the traced folder as a power loss
after the first ``k`` operations could leave them:

- a file's content is what it held at its last fsync (or fdatasync) before the
  crash, plus a chosen part of the writes and truncations that followed: none, a
  prefix, any subset (the kernel writes dirty pages back in any order), or a
  prefix whose last write is torn at a 512-byte sector boundary;
- creating, renaming, linking and unlinking files are durable in the order they
  happened (the metadata journal of ext4 or XFS); a created file that was never
  fsynced is empty.
"""

from __future__ import annotations

import hashlib
import random
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

OPEN, WRITE, FSYNC, TRUNC, RENAME, LINK, UNLINK, CLOSE = range(1, 9)
_HEAD = struct.Struct("<BiqII")
SECTOR = 512
POLICIES = ("none", "prefix", "subset", "torn", "all")
_O_TRUNC = 0o1000
_FOLDER = 1 << 40


def build_shim(directory: Path | None = None) -> Path:
    """Compile the shim once per source version; the path of the shared library."""
    source = Path(__file__).with_name("fsshim.c")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    folder = directory or Path(tempfile.gettempdir())
    library = folder / f"trainmq-fsshim-{digest}.so"
    if not library.exists():
        partial = library.with_suffix(f".{random.randrange(2**32)}.tmp")
        subprocess.run(
            ["cc", "-shared", "-fPIC", "-O1", "-o", str(partial), str(source), "-ldl", "-lpthread"],
            check=True,
            capture_output=True,
        )
        partial.rename(library)
    return library


@dataclass(frozen=True)
class Op:
    kind: int
    fd: int
    value: int  # open: flags; write: offset; truncate: length
    path: str = ""
    other: str = ""
    data: bytes = b""


def read_trace(log: Path) -> list[Op]:
    raw = log.read_bytes()
    ops, at = [], 0
    while at + _HEAD.size <= len(raw):
        kind, fd, value, la, lb = _HEAD.unpack_from(raw, at)
        at += _HEAD.size
        first, second = raw[at : at + la], raw[at + la : at + la + lb]
        at += la + lb
        if kind == WRITE:
            ops.append(Op(kind, fd, value, data=first))
        else:
            ops.append(Op(kind, fd, value, first.decode(), second.decode()))
    return ops


@dataclass
class _Inode:
    ops: list[Op] = field(default_factory=list)  # writes and truncations, in order
    synced: int = 0  # how many of ``ops`` an fsync has made durable
    directory: bool = False


def _apply(content: bytearray, op: Op, torn_sectors: int | None = None) -> None:
    if op.kind == TRUNC:
        del content[op.value :]
        content.extend(b"\0" * (op.value - len(content)))
        return
    data = op.data if torn_sectors is None else op.data[: torn_sectors * SECTOR]
    end = op.value + len(data)
    if len(content) < end:
        content.extend(b"\0" * (end - len(content)))
    content[op.value : end] = data


def _namespace(ops: list[Op], k: int) -> dict[str, _Inode]:
    """Replay the first ``k`` operations: every name and the inode it points at."""
    names: dict[str, _Inode] = {}
    fds: dict[int, _Inode] = {}
    for op in ops[:k]:
        if op.kind == OPEN:
            inode = names.get(op.path)
            if inode is None:
                inode = names[op.path] = _Inode(directory=bool(op.value & _FOLDER))
            if op.value & _O_TRUNC:
                inode.ops.append(Op(TRUNC, op.fd, 0))
            fds[op.fd] = inode
        elif op.kind in (WRITE, TRUNC) and op.fd in fds:
            fds[op.fd].ops.append(op)
        elif op.kind == FSYNC and op.fd in fds:
            fds[op.fd].synced = len(fds[op.fd].ops)
        elif op.kind == CLOSE:
            fds.pop(op.fd, None)
        elif op.kind == RENAME and op.path in names:
            names[op.other] = names.pop(op.path)
        elif op.kind == LINK and op.path in names:
            names[op.other] = names[op.path]
        elif op.kind == UNLINK:
            names.pop(op.path, None)
    return names


def _content(inode: _Inode, policy: str, rng: random.Random) -> bytes:
    content = bytearray()
    for op in inode.ops[: inode.synced]:
        _apply(content, op)
    later = inode.ops[inode.synced :]
    if policy == "all":
        chosen = later
    elif policy == "prefix" or policy == "torn":
        chosen = later[: rng.randint(0, len(later))]
    elif policy == "subset":
        chosen = [op for op in later if rng.random() < 0.5]
    else:
        chosen = []
    for op in chosen:
        _apply(content, op)
    if policy == "torn" and len(chosen) < len(later):
        torn = later[len(chosen)]
        if torn.kind == WRITE and len(torn.data) > SECTOR:
            _apply(content, torn, torn_sectors=rng.randint(1, len(torn.data) // SECTOR - 1 or 1))
    return bytes(content)


def disk_after(
    ops: list[Op], k: int, policy: str, rng: random.Random, traced: Path, into: Path
) -> list[str]:
    """Write into ``into`` the files of ``traced`` as a power loss after ``k`` operations
    could leave them (``-shm`` files are left out: SQLite rebuilds them); their names."""
    written = []
    for name, inode in sorted(_namespace(ops, k).items()):
        relative = Path(name).relative_to(traced)
        if inode.directory or name.endswith("-shm") or str(relative) == ".":
            continue
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_content(inode, policy, rng))
        written.append(str(relative))
    return written


def crash_points(ops: list[Op], count: int, rng: random.Random) -> Iterator[int]:
    """``count`` crash points: right after fsyncs, around writes, and at random."""
    syncs = [i + 1 for i, op in enumerate(ops) if op.kind == FSYNC]
    for _ in range(count):
        pick = rng.random()
        if syncs and pick < 0.4:
            yield rng.choice(syncs)
        elif syncs and pick < 0.7:
            yield max(0, rng.choice(syncs) - rng.randint(1, 3))
        else:
            yield rng.randint(0, len(ops))
