"""Run directories that appear only when complete, resume only their own run,
and never replace what the project did not create.

Training writes into `<run>.partial/`; the finished `<run>/` appears by one
rename after every file is written. The staging folder carries the run's
fingerprint (a hash of the training data and of every setting): rerunning the
same command resumes from its crash backup, while a different command that
meets a leftover `.partial` stops and names what differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.runs.layout import RunLayout, partial_path, write_json

logger = logging.getLogger("kerastune_nlp.runs")

# A finished run directory says what it is in its manifest.
MANIFEST_KIND = "kerastune_nlp.run"


def digest(payload) -> str:
    """A short, stable hash of a JSON-able value (examples, settings)."""
    text = json.dumps(payload, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def is_run_directory(path: Path) -> bool:
    """True when `path` holds a manifest this package wrote."""
    manifest = RunLayout(path).manifest
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("kind") == MANIFEST_KIND
    except (OSError, ValueError, AttributeError):
        return False


def check_output(output: Path, overwrite: bool) -> None:
    """Raises unless `output` can become a run directory; writes nothing.

    An existing `output` is replaced only with `overwrite` AND only when its
    manifest proves it is a run directory; anything else is refused.
    """
    output = Path(output)
    if output.exists():
        if not overwrite:
            raise RunDirectoryError(
                f"The run directory {str(output)!r} already exists. Received: `output`={str(output)!r}. "
                "Pass another --output, or --overwrite to replace it once the new run completes."
            )
        if not output.is_dir() or not is_run_directory(output):
            raise RunDirectoryError(
                f"Refusing to overwrite {str(output)!r}: it is not a run directory written by "
                "kerastune-nlp (no run_config.json manifest), so --overwrite would delete data this "
                "project did not create. Pass another --output."
            )
    staging = partial_path(output)
    if staging.exists() and not (staging / RunLayout.FINGERPRINT).is_file():
        raise RunDirectoryError(
            f"{str(staging)!r} exists but was not created by a kerastune-nlp run (no "
            f"{RunLayout.FINGERPRINT}). Move it away or pass another --output."
        )
    _check_writable(output.parent)


def _check_writable(parent: Path) -> None:
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirectoryError(
            f"Cannot write the run directory under {str(parent)!r}: {str(existing)!r} is not a "
            "writable folder. Pass an --output in a folder you can write to."
        )


def check_resumable(output: Path, fingerprint: dict, overwrite: bool = False) -> bool:
    """True when `<output>.partial` holds this very run; raises when it holds another.

    Reads only; with `overwrite`, a different run's staging folder will be
    discarded by `open_staging` instead of refused.
    """
    stored_file = partial_path(output) / RunLayout.FINGERPRINT
    if not stored_file.is_file():
        return False
    try:
        stored = json.loads(stored_file.read_text(encoding="utf-8"))
    except ValueError:
        stored = {}
    differences = _differences(stored, fingerprint)
    if not differences:
        return True
    if not overwrite:
        raise RunDirectoryError(
            f"{str(partial_path(output))!r} holds an interrupted run of a DIFFERENT command "
            f"({'; '.join(differences)}), so it cannot be resumed by this one. Rerun the original "
            "command to finish it, pass --overwrite to discard it and start afresh, or pass another --output."
        )
    return False


def open_staging(output: Path, fingerprint: dict, overwrite: bool = False) -> tuple[RunLayout, bool]:
    """Creates `<output>.partial`, or reopens it to resume the same run.

    Args:
        output: the run directory to be.
        fingerprint: dict. Named parts (data hashes, settings) of this run.
        overwrite: bool. Replace an existing run, and discard a staging
            folder of a different run.

    Returns:
        `(layout, resuming)`: resuming is True when a crash backup exists.

    Raises:
        RunDirectoryError: when a leftover staging folder belongs to a
            different run (without `overwrite`); the message names what differs.
    """
    check_output(output, overwrite)
    staging = partial_path(output)
    if check_resumable(output, fingerprint, overwrite):
        return RunLayout(staging), _has_backup(staging)
    if staging.exists():
        logger.warning("Discarding %s: it held an interrupted run of a different command.", staging)
        shutil.rmtree(staging)
    try:
        staging.mkdir(parents=True, exist_ok=False)
        write_json(staging / RunLayout.FINGERPRINT, fingerprint)
    except OSError as error:
        raise RunDirectoryError(
            f"Cannot create {str(staging)!r}: {error.strerror or error}. Pass an --output in a folder "
            "you can write to, with free space."
        ) from error
    return RunLayout(staging), False


def _has_backup(staging: Path) -> bool:
    backup = staging / RunLayout.BACKUP
    return backup.is_dir() and any(backup.iterdir())


def _differences(stored: dict, current: dict) -> list[str]:
    keys = sorted(set(stored) | set(current))
    changed = [key for key in keys if stored.get(key) != current.get(key)]
    described = []
    for key in changed[:6]:
        old, new = stored.get(key), current.get(key)
        if key.startswith("data."):
            described.append(f"{key} differs (other examples)")
        else:
            described.append(f"{key}: {old!r} there, {new!r} now")
    if len(changed) > 6:
        described.append(f"and {len(changed) - 6} more")
    return described


def resume_point(layout: RunLayout) -> dict | None:
    """Where a resumed run starts: `{"epoch": e, "step": s}` (1-based), or None."""
    progress = layout / RunLayout.BACKUP / "progress.json"
    if not progress.is_file():
        return None
    try:
        return json.loads(progress.read_text(encoding="utf-8"))
    except ValueError:
        return None


def prune(layout: RunLayout, keep_optimizer_state: bool = False) -> None:
    """Drops staging-only files (crash backup, fingerprint, epoch log; checkpoints unless kept)."""
    names = list(layout.staging_only) + ([] if keep_optimizer_state else [RunLayout.CHECKPOINTS])
    for name in names:
        path = layout / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def commit(layout: RunLayout, output: Path) -> None:
    """Moves the fully written (and pruned) staging folder into place.

    An existing run at `output` (checked by `check_output`) is first renamed
    to a fresh name this call creates, then deleted once the new run is in
    place; nothing else is touched.
    """
    staging, output = layout.root, Path(output)
    if not output.exists():
        os.replace(staging, output)
        return
    if not is_run_directory(output):
        raise RunDirectoryError(
            f"Refusing to replace {str(output)!r}: it is not a run directory written by kerastune-nlp. "
            f"The new run is complete in {str(staging)!r}."
        )
    # A unique empty folder we create; renaming a directory onto an empty one is atomic.
    replaced = Path(tempfile.mkdtemp(prefix=f".{output.name}.replaced-", dir=output.parent))
    os.replace(output, replaced)
    os.replace(staging, output)
    shutil.rmtree(replaced)
