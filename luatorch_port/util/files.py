"""Files written whole or not at all: a temp file beside the target, renamed over it on success."""

from __future__ import annotations

import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class atomic_output:
    """``with atomic_output(path) as f``: write to a temp file, rename over ``path`` on success."""

    def __init__(self, path, mode="wb"):
        self.path = os.fspath(path)
        self.mode = mode

    def __enter__(self):
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp",
                                        dir=folder)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would not
        self.f = os.fdopen(fd, self.mode, **({} if "b" in self.mode else {"encoding": "utf-8"}))
        return self.f

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.f.flush()
                os.fsync(self.f.fileno())
            self.f.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
        return False
