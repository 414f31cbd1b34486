"""Atomic file writes whose failures (disk full, read-only or unwritable folder) become one clear error."""
from __future__ import annotations

import errno
import glob
import hashlib
import io
import os
from typing import Any


from vlprompt.errors import RunFolderError

_TMP_SUFFIX = ".tmp"


def folder_error(path: str, error: OSError, what: str = "write") -> RunFolderError:
    """A RunFolderError for an OSError met while writing ``path``."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return RunFolderError(f"no space left on {os.path.dirname(path) or path} (while writing {path}); free some "
                              "space (or choose another --output-dir) and re-run the same command to resume.")
    return RunFolderError(f"cannot {what} {path}: {error.strerror or error}; choose another --output-dir or fix the "
                          "folder's permissions.")


def atomic_write(path: str, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see the old or the new file,
    never a partial one. A failure leaves the old file and no temporary file behind."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = f"{path}{_TMP_SUFFIX}{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise folder_error(path, e) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` into memory (so that a full disk fails in one clean write, not inside torch's zip writer)."""
    import torch  # here, so that the file helpers serve train.py's checks before torch is imported

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def remove_temp_files(folder: str) -> list[str]:
    """Remove the temporary files that killed writers left in ``folder`` and its subfolders; returns them."""
    found = [p for p in glob.glob(os.path.join(glob.escape(folder), "**", f"*{_TMP_SUFFIX}[0-9]*"), recursive=True)
             if os.path.isfile(p)]
    for path in found:
        os.remove(path)
    return found
