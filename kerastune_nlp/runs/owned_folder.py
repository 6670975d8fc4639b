"""Folders this package owns: a kind marker, a fingerprint, staging, one-rename commit, refuse the rest.

Every folder the package writes (run directories, pretraining outputs,
search folders, exports) proves it is ours by a JSON marker whose `kind`
names what it is. The product rule it enforces: never delete, replace or
write into a path this project did not create itself.

A staged folder is written into `<output>.partial/`, whose `fingerprint.json`
carries the kind and the named parts of the command (data hashes,
settings). Rerunning the same command reopens it (to resume); a different
command meeting it stops and names what differs. The finished folder
appears by one rename; an earlier folder of the same kind is replaced
atomically, anything else is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.runs.layout import partial_path, write_json

logger = logging.getLogger("kerastune_nlp.runs")

FINGERPRINT = "fingerprint.json"
BACKUP = "backup"
# How many differences a refusal names.
_SHOWN = 6


@dataclasses.dataclass(frozen=True)
class FolderKind:
    """One kind of folder the package owns.

    Args:
        kind: str. The `kind` its marker (and its staging fingerprint) holds.
        marker: str. The JSON file in a finished folder that proves it ours.
        noun: str. What messages call it ("run directory").
        writer: str. Who writes it, for messages ("`kerastune-nlp pretrain`").
        flag: str. The option that names it. Defaults to "--output".
    """

    kind: str
    marker: str
    noun: str
    writer: str
    flag: str = "--output"

    def is_ours(self, path) -> bool:
        """True when `path` is a folder whose marker says it is of this kind."""
        path = Path(path)
        return path.is_dir() and read_kind(path / self.marker) == self.kind


def digest(payload) -> str:
    """A short, stable hash of a JSON-able value (examples, settings): 16 hex digits."""
    text = json.dumps(payload, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _not_ours(folder: FolderKind) -> str:
    return f"it is not a {folder.noun} written by {folder.writer} (no {folder.marker} from it)"


def read_kind(marker: Path) -> str | None:
    """The `kind` a JSON marker file holds, or None (missing, unreadable, not a dict)."""
    try:
        return json.loads(Path(marker).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def check_output(output, folder: FolderKind, overwrite: bool) -> None:
    """Raises unless `output` can become a staged folder of `folder`'s kind; writes nothing.

    An existing `output` is replaced only with `overwrite` AND only when its
    marker proves it ours; a leftover `<output>.partial` must be ours too.
    """
    output = Path(output)
    if output.exists():
        if not overwrite:
            raise RunDirectoryError(
                f"The {folder.noun} {str(output)!r} already exists. Received: `output`={str(output)!r}. "
                f"Pass another {folder.flag}, or --overwrite to replace it once the new one is complete."
            )
        if not folder.is_ours(output):
            raise RunDirectoryError(f"Refusing to overwrite {str(output)!r}: {_not_ours(folder)}, so "
                                    "--overwrite would delete data this project did not create. Pass another "
                                    f"{folder.flag}.")
    staging = partial_path(output)
    if staging.exists() and read_kind(staging / FINGERPRINT) != folder.kind:
        raise RunDirectoryError(
            f"{str(staging)!r} exists but was not created by {folder.writer} (no {FINGERPRINT} of its own). "
            f"Move it away or pass another {folder.flag}."
        )
    existing = output.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirectoryError(
            f"Cannot write the {folder.noun} under {str(output.parent)!r}: {str(existing)!r} is not a writable "
            f"folder. Pass an {folder.flag} in a folder you can write to."
        )


def stamped(folder: FolderKind, fingerprint: dict) -> dict:
    """The fingerprint as stored: the kind first, then the command's named parts."""
    return {"kind": folder.kind, **fingerprint}


def check_resumable(output, folder: FolderKind, fingerprint: dict, overwrite: bool = False) -> bool:
    """True when `<output>.partial` holds this very command; raises when it holds another.

    Reads only; with `overwrite`, a different command's staging folder will
    be discarded by `open_staging` instead of refused.
    """
    stored_file = partial_path(output) / FINGERPRINT
    if not stored_file.is_file():
        return False
    changed = differences(read_json(stored_file), stamped(folder, fingerprint))
    if not changed:
        return True
    if not overwrite:
        raise RunDirectoryError(
            f"{str(partial_path(output))!r} holds an interrupted run of a DIFFERENT command ({'; '.join(changed)}), "
            "so it cannot be resumed by this one. Rerun the original command to finish it, pass --overwrite to "
            f"discard it and start afresh, or pass another {folder.flag}."
        )
    return False


def open_staging(output, folder: FolderKind, fingerprint: dict, overwrite: bool = False) -> tuple[Path, str]:
    """Creates `<output>.partial`, or reopens it for the same command.

    Returns:
        `(staging, state)`: state is "fresh", "resume" (a crash backup of
        this very command is there) or "complete" (the marker is written and
        the backup gone: only the rename is left).

    Raises:
        RunDirectoryError: a leftover staging folder belongs to a different
            command (unless `overwrite`, which discards it); the message
            names what differs.
    """
    output = Path(output)
    check_output(output, folder, overwrite)
    staging = partial_path(output)
    if check_resumable(output, folder, fingerprint, overwrite):
        if folder.is_ours(staging) and not (staging / BACKUP).exists():
            return staging, "complete"
        backup = staging / BACKUP
        return staging, "resume" if backup.is_dir() and any(backup.iterdir()) else "fresh"
    if staging.exists():
        logger.warning("Discarding %s: it held an interrupted run of a different command.", staging)
        shutil.rmtree(staging)
    try:
        staging.mkdir(parents=True)
        write_json(staging / FINGERPRINT, stamped(folder, fingerprint))
    except OSError as error:
        raise RunDirectoryError(
            f"Cannot create {str(staging)!r}: {error.strerror or error}. Pass an {folder.flag} in a folder you can "
            "write to, with free space."
        ) from error
    return staging, "fresh"


def drop(root: Path, names) -> None:
    """Removes the staging-only files and folders `names` from `root` (those that exist)."""
    for name in names:
        path = Path(root) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def commit(staging: Path, output: Path, folder: FolderKind) -> None:
    """Moves the fully written staging folder into place, replacing an earlier folder of the same kind only.

    The earlier folder is first renamed to a fresh name this call creates,
    then deleted once the new one is in place; nothing else is touched. The
    fingerprint goes last: until then, a rerun recognises the staging folder.
    """
    staging, output = Path(staging), Path(output)
    if output.exists() and not folder.is_ours(output):
        raise RunDirectoryError(f"Refusing to replace {str(output)!r}: {_not_ours(folder)}. The new one is "
                                f"complete in {str(staging)!r}.")
    replace(staging, output)
    (output / FINGERPRINT).unlink(missing_ok=True)


def replace(source: Path, output: Path) -> None:
    """Moves the folder `source` to `output`; an existing `output` (the caller checked it) goes once it is replaced.

    The old folder is first renamed to a fresh name this call creates, then
    deleted: a reader sees the old folder or the new one, never a mix.
    """
    source, output = Path(source), Path(output)
    if not output.exists():
        os.replace(source, output)
        return
    # A unique empty folder we create; renaming a directory onto an empty one is atomic.
    replaced = Path(tempfile.mkdtemp(prefix=f".{output.name}.replaced-", dir=output.parent))
    os.replace(output, replaced)
    os.replace(source, output)
    shutil.rmtree(replaced)


def open_in_place(path, folder: FolderKind, fingerprint: dict, overwrite: bool) -> bool:
    """Creates a folder written in place (no staging), or reopens it for the same command; True when reopened.

    For folders that grow over many runs (a search). The marker holds the
    kind and the fingerprint; an empty existing folder is taken, anything
    else not ours is refused, `--overwrite` included.
    """
    path = Path(path)
    marker = path / folder.marker
    if path.exists():
        stored = read_json(marker) if marker.is_file() else {}
        if stored.get("kind") != folder.kind:
            if not (path.is_dir() and not any(path.iterdir())):
                raise RunDirectoryError(
                    f"Refusing to use {str(path)!r} as a {folder.noun}: it exists and was not written by "
                    f"{folder.writer} (no {folder.marker}), so nothing in it is touched, --overwrite included. "
                    f"Pass another {folder.flag}."
                )
        else:
            changed = differences(stored.get("fingerprint") or {}, fingerprint)
            if not changed:
                return True
            if not overwrite:
                raise RunDirectoryError(
                    f"{str(path)!r} holds a DIFFERENT {folder.noun.split()[0]} ({'; '.join(changed)}), so it cannot "
                    "be resumed by this one. Rerun the original command to continue it, pass --overwrite "
                    f"(overwrite=True) to discard it, or pass another {folder.flag}."
                )
            logger.warning("Discarding %s (--overwrite): it held a different %s.", path, folder.noun)
            shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        write_json(marker, {"kind": folder.kind, "fingerprint": fingerprint})
    except OSError as error:
        raise RunDirectoryError(f"Cannot create the {folder.noun} {str(path)!r}: {error.strerror or error}. "
                                f"Pass a {folder.flag} you can write to.") from error
    return False


def read_json(path: Path) -> dict:
    """A JSON object from `path`, or {} when it is missing, unreadable or not an object."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def differences(stored: dict, current: dict) -> list[str]:
    """What differs between two fingerprints, one phrase a part (nested settings by dotted name)."""
    stored, current = _flat(stored), _flat(current)
    changed = [key for key in sorted(set(stored) | set(current)) if stored.get(key) != current.get(key)]
    described = []
    for key in changed[:_SHOWN]:
        old, new = stored.get(key), current.get(key)
        if _is_digest(old) or _is_digest(new):
            described.append(f"{key} differs (other data)")
        else:
            described.append(f"{key}: {old!r} there, {new!r} now")
    if len(changed) > _SHOWN:
        described.append(f"and {len(changed) - _SHOWN} more")
    return described


def _flat(parts: dict) -> dict:
    flat = {}
    for key, value in parts.items():
        if isinstance(value, dict) and value:
            flat.update({f"{key}.{name}": inner for name, inner in value.items()})
        else:
            flat[key] = value
    return flat


def _is_digest(value) -> bool:
    # What `digest` (and a corpus digest) gives: content, not a setting worth printing.
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{16}", value) is not None
