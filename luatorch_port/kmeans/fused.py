"""The bf16 encoder's fused epilogue (``triangle.c``), compiled on first use and loaded with ctypes.

No Lua counterpart: a speed-up of :mod:`.encoder`'s ``precision="bf16"`` path. The C source
ships beside this module; the first call compiles it with the system C compiler (``$CC``,
default ``cc``) for this CPU (``-march=native``) into a per-user cache folder
(``$A2_CACHE_DIR``, default ``~/.cache/luatorch_port``), keyed by the source, the flags and
the CPU, written atomically so concurrent processes may race harmlessly. Without a working
compiler :func:`kernels` returns None and the encoder keeps its torch epilogue.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("triangle.c")
# Not -ffast-math: a shared object linked with it sets the CPU's flush-to-zero and
# denormals-are-zero flags for the whole process when it is loaded. These flags are the parts
# of it that let the row sums (reassociation) and sqrt vectorise.
CFLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math",
          "-fno-signed-zeros", "-fPIC", "-shared")


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$A2_CACHE_DIR`` or ``~/.cache/luatorch_port``."""
    env = os.environ.get("A2_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "luatorch_port"


def _cpu_tag() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _build(compiler: str) -> Path | None:
    try:
        src = SOURCE.read_bytes()
    except OSError:                   # an install without the C source
        return None
    key = hashlib.sha256(src + " ".join((compiler,) + CFLAGS).encode()
                         + _cpu_tag().encode()).hexdigest()[:16]
    lib = cache_dir() / f"triangle-{key}.so"
    if lib.exists():
        return lib
    tmp = None
    try:
        lib.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib.parent)
        os.close(fd)
        done = subprocess.run([compiler, *CFLAGS, "-o", tmp, str(SOURCE), "-lm"],
                              capture_output=True, timeout=120)
        if done.returncode != 0:
            return None
        os.replace(tmp, lib)
        tmp = None
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return lib


@functools.lru_cache(maxsize=None)
def kernels():
    """``(contrast_patches_bf16, triangle_pool_bf16, hard_pool_bf16)``, the C functions of
    ``triangle.c``, or
    None when no C compiler builds them (or ``$A2_NO_FUSED`` is set). Called with raw
    pointers; ctypes releases the GIL during each call."""
    if os.environ.get("A2_NO_FUSED"):
        return None
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        return None
    path = _build(compiler)
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(str(path))
        patches, pool, hard = lib.contrast_patches_bf16, lib.triangle_pool_bf16, lib.hard_pool_bf16
    except (OSError, AttributeError):
        return None
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    patches.argtypes = [p, i64, i64, i64, i64, i64, i64, ctypes.c_float, p, p]
    pool.argtypes = [p, i64, p, p, i64, i64, i64, i64, i64, i64, i64, i64, p, p]
    hard.argtypes = [p, i64, p, i64, i64, i64, i64, i64, i64, i64, p]
    patches.restype = pool.restype = hard.restype = None
    return patches, pool, hard
