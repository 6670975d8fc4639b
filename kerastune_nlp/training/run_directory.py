"""Run directories that appear only when complete.

Training writes into `<run>.partial/`; the final `<run>/` appears by one
rename after every file is written, so a crash never leaves a half-written
run where a user (or `evaluate`) would take it for a finished one. The
`.partial` folder keeps the crash-recovery backup, so starting the same run
again resumes it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from kerastune_nlp.errors import RunDirectoryError

PARTIAL_SUFFIX = ".partial"


def check_free(output: Path, overwrite: bool) -> None:
    """Raises unless `output` is free or may be replaced."""
    output = Path(output)
    if output.exists() and not overwrite:
        raise RunDirectoryError(
            f"The run directory {str(output)!r} already exists. Received: `output`={str(output)!r}. "
            "Pass another --output, or --overwrite to replace it once the new run completes."
        )


def staging_directory(output: Path, overwrite: bool) -> Path:
    """Checks `output` is free (or may be replaced) and creates its staging folder."""
    output = Path(output)
    check_free(output, overwrite)
    staging = output.with_name(output.name + PARTIAL_SUFFIX)
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def commit(staging: Path, output: Path) -> None:
    """Drops the crash backup and moves the fully written staging folder into place."""
    shutil.rmtree(Path(staging) / "backup", ignore_errors=True)
    output = Path(output)
    if output.exists():
        # Keep the old run until the new one is in place.
        old = output.with_name(output.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(output, old)
        os.replace(staging, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, output)


def write_json(path: Path, payload) -> None:
    """Writes JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
    os.replace(handle.name, path)
