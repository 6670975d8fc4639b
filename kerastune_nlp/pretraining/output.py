"""The output folder of continued pretraining: staged, fingerprinted, committed by one rename.

Everything is written into `<output>.partial/`, whose `fingerprint.json`
names the command's corpus, backbone and settings; the finished folder
appears by a rename once the weights, tokenizer and report are complete, so
a kill never leaves a half-written backbone. Rerunning the same command
resumes from the crash backup in the staging folder; a different command
meeting it stops and says what differs. An existing `<output>` is replaced
only with `overwrite` and only when its `pretraining.json` proves this
package wrote it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.runs.layout import partial_path, write_json

logger = logging.getLogger("kerastune_nlp.pretraining")

KIND = "kerastune_nlp.pretraining"
REPORT = "pretraining.json"
FINGERPRINT = "fingerprint.json"
BACKUP = "backup"
BEFORE = "eval_before.json"
HISTORY = "history.json"
# Staging-only files, removed before the rename.
STAGING_ONLY = (BACKUP, BEFORE, HISTORY)


def _kind(path: Path) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def is_pretrain_output(path) -> bool:
    """True when `path` is a finished folder written by `continue_pretraining`."""
    return Path(path).is_dir() and _kind(Path(path) / REPORT) == KIND


def check_output(output, overwrite: bool) -> None:
    """Raises unless `output` can become a pretraining output folder; writes nothing."""
    output = Path(output)
    if output.exists():
        if not overwrite:
            raise RunDirectoryError(
                f"The output folder {str(output)!r} already exists. Received: `output`={str(output)!r}. "
                "Pass another --output, or --overwrite to replace an earlier pretraining output once the new "
                "one is complete."
            )
        if not is_pretrain_output(output):
            raise RunDirectoryError(
                f"Refusing to overwrite {str(output)!r}: it is not a folder written by `kerastune-nlp pretrain` "
                f"(no {REPORT} from it), so --overwrite would replace data this project did not create. Pass "
                "another --output."
            )
    staging = partial_path(output)
    if staging.exists() and _kind(staging / FINGERPRINT) != KIND:
        raise RunDirectoryError(
            f"{str(staging)!r} exists but was not created by `kerastune-nlp pretrain` (no {FINGERPRINT} of a "
            "pretraining run). Move it away or pass another --output."
        )
    existing = output.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirectoryError(
            f"Cannot write the output folder under {str(output.parent)!r}: {str(existing)!r} is not a writable "
            "folder. Pass an --output in a folder you can write to."
        )


def open_staging(output, fingerprint: dict, overwrite: bool = False) -> tuple[Path, str]:
    """Creates `<output>.partial`, or reopens it for the same command.

    Returns:
        `(staging, state)`: state is "fresh", "resume" (a crash backup of
        this very command is there) or "complete" (only the rename is left).

    Raises:
        RunDirectoryError: a leftover staging folder belongs to a different
            command (unless `overwrite`, which discards it); the message
            names what differs.
    """
    output = Path(output)
    check_output(output, overwrite)
    staging = partial_path(output)
    fingerprint = {"kind": KIND, **fingerprint}
    if staging.exists():
        try:
            stored = json.loads((staging / FINGERPRINT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        differences = [key for key in sorted(set(stored) | set(fingerprint)) if stored.get(key) != fingerprint.get(key)]
        if not differences:
            if is_pretrain_output(staging) and not (staging / BACKUP).exists():
                return staging, "complete"
            return staging, "resume" if (staging / BACKUP).is_dir() and any((staging / BACKUP).iterdir()) else "fresh"
        if not overwrite:
            described = "; ".join(_describe(key, stored.get(key), fingerprint.get(key)) for key in differences[:6])
            raise RunDirectoryError(
                f"{str(staging)!r} holds an interrupted pretraining run of a DIFFERENT command ({described}), so "
                "this one cannot resume it. Rerun the original command to finish it, pass --overwrite to discard "
                "it and start afresh, or pass another --output."
            )
        logger.warning("Discarding %s: it held an interrupted run of a different command.", staging)
        shutil.rmtree(staging)
    try:
        staging.mkdir(parents=True)
        write_json(staging / FINGERPRINT, fingerprint)
    except OSError as error:
        raise RunDirectoryError(f"Cannot create {str(staging)!r}: {error.strerror or error}. Pass an --output in a "
                                "folder you can write to, with free space.") from error
    return staging, "fresh"


def _describe(key: str, old, new) -> str:
    if key in ("corpus", "eval"):
        return f"{key} differs (other text)"
    if isinstance(old, dict) and isinstance(new, dict):
        changed = [name for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
        return ", ".join(f"{key}.{name}: {old.get(name)!r} there, {new.get(name)!r} now" for name in changed[:4])
    return f"{key}: {old!r} there, {new!r} now"


def commit(staging: Path, output: Path) -> None:
    """Drops staging-only files and moves the finished folder into place (replacing an earlier output)."""
    staging, output = Path(staging), Path(output)
    for name in STAGING_ONLY:
        path = staging / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    if output.exists():
        if not is_pretrain_output(output):
            raise RunDirectoryError(f"Refusing to replace {str(output)!r}: it is not a pretraining output. The new "
                                    f"one is complete in {str(staging)!r}.")
        # A fresh empty folder of our own; renaming a directory onto an empty one is atomic.
        replaced = Path(tempfile.mkdtemp(prefix=f".{output.name}.replaced-", dir=output.parent))
        os.replace(output, replaced)
        os.replace(staging, output)
        shutil.rmtree(replaced)
    else:
        os.replace(staging, output)
    # Last: until here, a rerun recognises the staging folder as its own.
    (output / FINGERPRINT).unlink(missing_ok=True)
