"""The disk under a benchmark: its file-system type and its raw fsync rate."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["file_system_type", "fsync_rate"]


def file_system_type(path: Path) -> str:
    """The type of the mount holding ``path`` (what ``df -T`` shows), or "unknown"."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    resolved, best, best_type = str(path.resolve()), "", "unknown"
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fields[2]
    return best_type


def fsync_rate(directory: Path, seconds: float = 1.0) -> float:
    """Writes and fsyncs one small block of a file in a loop; fsyncs per second."""
    path = directory / "fsync.probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            os.pwrite(fd, count.to_bytes(8, "little") * 64, 0)
            os.fsync(fd)
            count += 1
        return count / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
