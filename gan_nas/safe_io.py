"""Reading files a user controls (regular files only, of bounded size, JSON of bounded nesting),
and writing any file atomically.

Every file gan-nas reads may be anything the user pointed it at: ``/dev/zero``
(an endless read), a FIFO (a read that never returns), a directory, or a JSON
document nested a million levels deep (``RecursionError`` in the parser). The
readers here turn all of these into an ``OSError`` or ``ValueError`` with a
readable message, which the callers already turn into their own error types.

Every file gan-nas writes in place of another goes through :func:`write_atomic`
(or :func:`write_bytes_atomic`): a temporary file in the target's folder,
fsynced, renamed over the target, and the folder fsynced, so that a crash at
any point leaves the old file or the new one, and an error leaves no
temporary behind. Temporaries are named ``.NAME.tmp-PID-RANDOM`` (see
:func:`temp_name`), which is how a run directory finds those a crash left.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

# Bounds on what a single file of each kind may hold; beyond them the file is not what it claims to be.
MAX_JSON_BYTES = 64 * 2**20          # a config, a genome, state.json, a checkpoint's meta
MAX_JOURNAL_BYTES = 1024 * 2**20     # a journal of a million evaluations is about 1 GiB
TMP_MARK = ".tmp-"  # temporaries are named .NAME.tmp-PID-RANDOM[SUFFIX]


class NotRegularFileError(OSError):
    """The path is a directory, device, FIFO or socket, where a regular file was expected."""


class FileTooLargeError(OSError):
    """The file holds more bytes than a file of its kind can hold."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular(path: str | Path) -> os.stat_result:
    """The ``stat`` of ``path`` (symlinks followed) if it is a regular file.

    Raises:
        FileNotFoundError: the path does not exist.
        NotRegularFileError: it is a directory, device, FIFO or socket.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFileError(errno.EINVAL, f"{_kind(st.st_mode)}, not a regular file", str(path))
    return st


def open_regular(path: str | Path, limit: int | None = None) -> BinaryIO:
    """Open a regular file for binary reading, refusing anything else before reading a byte.

    The open itself is non-blocking, so a FIFO is refused instead of waiting for
    a writer that never comes; the returned file blocks as usual.

    Args:
        path: the file.
        limit: if given, the most bytes the file may hold.

    Raises:
        OSError: the file is missing or unreadable; NotRegularFileError, FileTooLargeError as above.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(errno.EINVAL, f"{_kind(st.st_mode)}, not a regular file", str(path))
        if limit is not None and st.st_size > limit:
            raise FileTooLargeError(errno.EFBIG, f"{st.st_size:,} bytes, more than the {limit:,} such a file "
                                                 "may hold", str(path))
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, limit: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_regular`)."""
    with open_regular(path, limit) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise FileTooLargeError(errno.EFBIG, f"more than the {limit:,} bytes such a file may hold", str(path))
    return data


def read_text(path: str | Path, limit: int = MAX_JSON_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes.

    Raises:
        OSError: as :func:`open_regular`.
        ValueError: the bytes are not UTF-8.
    """
    return read_bytes(path, limit).decode("utf-8")


def parse_json(text: str | bytes) -> Any:
    """``json.loads``, with nesting too deep for the parser reported as the ValueError it is.

    Integers of more than Python's 4,300 digits are a ValueError from ``json`` itself.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def read_json(path: str | Path, limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in a regular file of at most ``limit`` bytes.

    Raises:
        OSError: as :func:`open_regular`.
        ValueError: not UTF-8, not JSON, or nested too deeply.
    """
    return parse_json(read_text(path, limit))


# --- writing --------------------------------------------------------------------


def temp_name(path: str | Path, suffix: str = "") -> Path:
    """A fresh hidden name beside ``path`` for a temporary file: ``.NAME.tmp-PID-RANDOM`` + ``suffix``.

    ``suffix`` is for writers that insist on an extension (Keras' ``.keras``).
    """
    path = Path(path)
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def fsync_path(path: str | Path) -> None:
    """Flush a file's data, or a folder's entries (a rename, a new file in it), to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, write: Callable[[Path], object], suffix: str = "") -> Path:
    """Replace ``path`` with what ``write(temporary_path)`` writes, so that a crash leaves the old file or the new one.

    ``write`` creates and fills the temporary file (see :func:`temp_name`); it is
    then fsynced, renamed over ``path``, and the folder fsynced. On any exception
    (Ctrl-C included) the temporary file is removed and ``path`` is untouched.

    Args:
        path: the target; its folder must exist.
        write: called with the temporary file's path.
        suffix: ends the temporary file's name, for writers that need an extension.

    Returns:
        ``path``, as a Path.
    """
    path = Path(path)
    tmp = temp_name(path, suffix)
    try:
        write(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically (see :func:`write_atomic`)."""
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))
