"""Keeping an output file within its cap: its first and last bytes stay, its middle goes.

The task writes its output file at its own offset and never notices: ``trim`` frees the
blocks of the middle with ``fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`` (Linux),
leaving a hole. The file's size keeps growing, so byte offsets stay stable for readers that
follow it, while its disk usage stays within the cap. ``logs`` shows the hole as one line
saying how many bytes were dropped there.

A file system that cannot punch holes is left alone, with one warning.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from pathlib import Path

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
UNSUPPORTED = frozenset((errno.EOPNOTSUPP, errno.ENOSYS))
log = logging.getLogger(__name__)

_libc = ctypes.CDLL(None, use_errno=True)
_fallocate = _libc.fallocate
_fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
_fallocate.restype = ctypes.c_int
_refused: set[int] = set()  # the devices whose file system cannot punch holes


def trim(path: Path, cap: int) -> int:
    """Free the middle of ``path`` so that it keeps within ``cap`` bytes on disk.

    The first ``cap // 2`` bytes and the last ``cap - cap // 2`` stay, widened to whole
    blocks of the file system; the file's size is unchanged. Returns how many bytes were
    punched out now: 0 when the file is within its cap, trimmed already, or gone, or when
    it cannot be trimmed (logged as a warning: trimming never raises).
    """
    try:
        return _trim(path, cap)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        _warn(path, exc)
        return 0


def _trim(path: Path, cap: int) -> int:
    status = os.stat(path)
    if status.st_size <= cap or status.st_dev in _refused:
        return 0
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        return _punch_middle(fd, cap)
    finally:
        os.close(fd)


def _punch_middle(fd: int, cap: int) -> int:
    """Punch out what is still data between the kept head and the kept tail of ``fd``."""
    status = os.fstat(fd)
    block = max(status.st_blksize, os.fstatvfs(fd).f_bsize)
    head = -(-(cap // 2) // block) * block  # rounded up: the head's last block stays whole
    end = (status.st_size - (cap - cap // 2)) // block * block  # rounded down, likewise
    start = _next_data(fd, head, end)
    if start >= end:
        return 0
    if _fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, end - start) != 0:
        code = ctypes.get_errno()
        if code in UNSUPPORTED:
            _refused.add(status.st_dev)
        raise OSError(code, os.strerror(code))
    return end - start


def _next_data(fd: int, position: int, end: int) -> int:
    """Where data begins at or after ``position`` (the hole punched before ends), or ``end``."""
    if position >= end:
        return end
    try:
        return os.lseek(fd, position, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: nothing but a hole from there on
            raise
        return end


def _warn(path: Path, exc: OSError) -> None:
    if exc.errno in UNSUPPORTED:
        log.warning(
            "%s: this file system cannot punch holes (%s): output over its cap is kept whole "
            "on this file system",
            path,
            exc.strerror,
        )
    else:
        log.warning("%s: cannot trim the output to its cap: %s", path, exc)
