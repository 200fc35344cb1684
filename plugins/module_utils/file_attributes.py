"""Files as the collection's modules write them on a host (wsgi_files, wsgi_self_signed), written once.

A file is written under a temporary name in its own directory and renamed over the path, so a reader sees
the old file or the new one, never half of it; its owner and mode are set on the temporary file first, so
the new file is never, for a moment, readable by more than it should be (a key).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable


def set_attributes(path: str, uid: int | None, gid: int | None, mode: int | None) -> None:
    """Owner, group and mode, each left as it is where None; a link itself, never its target."""
    os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid, follow_symlinks=False)
    if mode is not None:
        os.chmod(path, mode)


def attributes_differ(info: os.stat_result, uid: int | None, gid: int | None, mode: int | None) -> bool:
    """Whether a path (its lstat) differs from the owner, group and mode asked (None: anything)."""
    return ((uid is not None and info.st_uid != uid) or (gid is not None and info.st_gid != gid)
            or (mode is not None and stat.S_IMODE(info.st_mode) != mode))


def write_atomically(path: str, data: bytes, prepare: Callable[[str], None]) -> None:
    """data under a temporary name beside path, prepare(temporary) (its owner and mode), then renamed over
    path; the temporary file removed if anything fails."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        prepare(temporary)
        os.rename(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise
