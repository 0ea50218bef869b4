"""The arrays of an ``.npz`` file, named with their shapes and dtypes, read from the headers
alone: checking that a replay or game-store file fits costs no pass over its data."""

from __future__ import annotations

import zipfile

import numpy as np


def npz_layout(path) -> dict[str, tuple[tuple, np.dtype]]:
    """``{array name: (shape, dtype)}``; raises ``ValueError`` when the file is not a readable
    ``.npz`` (a truncated one has no zip directory)."""
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f"array '{info.filename}' in .npy format {version}")
                out[info.filename[:-4]] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise ValueError(f"not a readable .npz file ({type(exc).__name__}: {exc})") from None
    return out
