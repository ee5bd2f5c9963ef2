"""Download the official STL-10 binaries, verify their MD5s, convert them to the course files.

Port of what torchvision's ``datasets.STL10(download=True)`` and STL-10's
``stl10_input.download_and_extract`` do (fetch ``stl10_binary.tar.gz``, extract), with the
per-file MD5s of the official binaries checked before anything is converted.

Deviations: downloads resume (an HTTP Range request continues a ``.part`` file; a server or
URL scheme without ranges restarts it); only the five ``.bin`` files needed are extracted,
into a temporary folder removed after conversion; on a wrong MD5 the archive and everything
extracted are deleted, so no output is left behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from ..util.errors import A2Error
from ..util.progress import Counter
from .stl10 import FILES, convert_stl10, output_folder

STL10_URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
ARCHIVE = "stl10_binary.tar.gz"
# MD5 of each official binary (as published with STL-10 and checked by torchvision).
STL10_MD5 = {
    "train_X.bin": "918c2871b30a85fa023e0c44e0bee87f",
    "train_y.bin": "5a34089d4802c674881badbb80307741",
    "test_X.bin": "7f263ba9f9e0b06b93213547f721ac82",
    "test_y.bin": "36f9794fa4beb8a2c72628de14fa638e",
    "unlabeled_X.bin": "5242ba1fed5e4be9e1e742405eb56ca4",
}
_BLOCK = 1 << 20
URL_SCHEMES = ("http", "https", "file")  # what urllib.request opens without extra handlers


def download(url, path, *, progress=None, timeout=60):
    """Download ``url`` to ``path``, resuming ``path + '.part'`` when the server allows."""
    part = path + ".part"
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the .part is already complete
            os.replace(part, path)
            return
        raise A2Error(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:  # ValueError: not a URL
        raise A2Error(f"{url}: {getattr(err, 'reason', err)}") from None
    with response:
        resumed = have and getattr(response, "status", None) == 206
        if not resumed:
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        with open(part, "ab" if resumed else "wb") as f:
            tick = Counter(progress, total, os.path.basename(path), done=have, unit="B")
            while True:
                block = response.read(_BLOCK)
                if not block:
                    break
                f.write(block)
                tick(len(block))
    if total is not None and os.path.getsize(part) != total:
        raise A2Error(f"{url}: the download stopped at {os.path.getsize(part)} of {total} bytes; "
                      f"run again to resume")
    os.replace(part, path)


def extract_verified(archive, dest, md5s, *, progress=None):
    """Extract the ``md5s`` members of ``archive`` (any folder) into ``dest``, checking each MD5.

    Raises A2Error naming the first member missing or whose MD5 differs.
    """
    found = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            tick = Counter(progress, len(md5s), "verify md5")
            for member in tar:
                name = os.path.basename(member.name)
                if not member.isfile() or name not in md5s or name in found:
                    continue
                digest = hashlib.md5()
                with tar.extractfile(member) as src, open(os.path.join(dest, name), "wb") as out:
                    while True:
                        block = src.read(_BLOCK)
                        if not block:
                            break
                        digest.update(block)
                        out.write(block)
                found[name] = digest.hexdigest()
                if found[name] != md5s[name].lower():
                    raise A2Error(f"{archive}: {member.name} has MD5 {found[name]}, expected "
                                  f"{md5s[name]} (corrupt or incomplete download)")
                tick(1)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise A2Error(f"{archive}: not a readable tar.gz archive ({err})") from None
    missing = [n for n in md5s if n not in found]
    if missing:
        raise A2Error(f"{archive}: has no {', '.join(missing)}")


def fetch_stl10(out_dir, *, url: str = STL10_URL, md5s=None, seed: int = 1,
                keep_archive: bool = True, progress=None):
    """Download STL-10 into ``out_dir`` and write the course's four t7b files there.

    Parameters
    ----------
    out_dir : created if missing.
    url : where ``stl10_binary.tar.gz`` is (``file://`` works); default the official one.
    md5s : dict file name -> MD5, default :data:`STL10_MD5` (tests pass their own).
    seed : the train/val split's seed (see :func:`convert_stl10`).
    keep_archive : keep ``stl10_binary.tar.gz`` after a successful conversion.
    progress : :class:`~luatorch_port.util.progress.Progress`, optional.

    Returns the :class:`~luatorch_port.data.stl10.ConvertCounts`. On a wrong MD5 nothing is
    left in ``out_dir`` (the archive is deleted too: it is corrupt).
    """
    md5s = dict(STL10_MD5 if md5s is None else md5s)
    unknown = set(md5s) - set(FILES)
    if unknown or len(md5s) != len(FILES):
        raise A2Error(f"md5s must name exactly {', '.join(FILES)}")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in URL_SCHEMES:
        raise A2Error(f"--url {url!r}: expected an http://, https:// or file:// URL")
    with output_folder(out_dir):
        archive = os.path.join(out_dir, ARCHIVE)
        if not os.path.exists(archive):
            download(url, archive, progress=progress)
        workdir = tempfile.mkdtemp(prefix=".stl10_binary.", dir=out_dir)
        try:
            try:
                extract_verified(archive, workdir, md5s, progress=progress)
            except A2Error:
                os.unlink(archive)
                raise
            counts = convert_stl10(workdir, out_dir, seed, progress=progress)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    if not keep_archive:
        os.unlink(archive)
    return counts
