"""Finding the `inlet` executable the wheel installed (`target-inlet` beside it is a script
that runs `inlet load`)."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

_NAME = "inlet.exe" if os.name == "nt" else "inlet"


def find_inlet() -> str:
    """Path of the `inlet` binary: ``INLET_EXECUTABLE`` if set, else the one
    installed next to this package (the venv's scripts folder, or the user
    scheme's for ``pip install --user``), else the first on ``PATH``."""
    override = os.environ.get("INLET_EXECUTABLE")
    if override:
        return override
    candidates = [Path(sysconfig.get_path("scripts")) / _NAME]
    user_scheme = {"posix": "posix_user", "nt": "nt_user"}.get(os.name)
    if user_scheme:
        try:
            candidates.append(Path(sysconfig.get_path("scripts", scheme=user_scheme)) / _NAME)
        except KeyError:
            pass
    candidates.append(Path(sys.executable).parent / _NAME)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which(_NAME)
    if found:
        return found
    raise FileNotFoundError(
        "the inlet binary is not installed next to the inlet package; reinstall it "
        "(pip install --force-reinstall inlet-lake) or point INLET_EXECUTABLE at one"
    )

