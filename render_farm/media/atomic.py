"""Write a file under a temporary name in its destination directory, then rename it into place."""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from render_farm.errors import InvalidInput


@contextlib.contextmanager
def atomic_path(dst: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path next to dst (same extension); on success os.replace it onto dst.

    On any error the temporary file is removed and dst is untouched: never a half-written dst.
    """
    final = os.path.abspath(os.fspath(dst))
    directory = os.path.dirname(final)
    if not os.path.isdir(directory):
        raise InvalidInput(f"{dst}: directory {directory} does not exist")
    base, ext = os.path.splitext(os.path.basename(final))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".part{ext}", dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a finished file gets the usual mode
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
