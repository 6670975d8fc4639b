"""Run directories that appear only when complete, resume only their own run,
and never replace what the project did not create.

Training writes into `<run>.partial/`; the finished `<run>/` appears by one
rename after every file is written. The staging folder carries the run's
fingerprint (a hash of the training data and of every setting): rerunning the
same command resumes from its crash backup, while a different command that
meets a leftover `.partial` stops and names what differs. The protocol itself
(marker, fingerprint, staging, commit) is `runs.owned_folder`'s; this module
binds it to the run directory's layout.
"""

from __future__ import annotations

import json
from pathlib import Path

from kerastune_nlp.runs import owned_folder
from kerastune_nlp.runs.layout import RunLayout, partial_path  # noqa: F401  (partial_path: the CLI's hint)

# A finished run directory says what it is in its manifest.
MANIFEST_KIND = "kerastune_nlp.run"
RUN_FOLDER = owned_folder.FolderKind(MANIFEST_KIND, RunLayout.MANIFEST, "run directory", "kerastune-nlp")


def is_run_directory(path: Path) -> bool:
    """True when `path` holds a manifest this package wrote."""
    return RUN_FOLDER.is_ours(path)


def check_output(output: Path, overwrite: bool) -> None:
    """Raises unless `output` can become a run directory; writes nothing (see `owned_folder.check_output`)."""
    owned_folder.check_output(output, RUN_FOLDER, overwrite)


def check_resumable(output: Path, fingerprint: dict, overwrite: bool = False) -> bool:
    """True when `<output>.partial` holds this very run; raises when it holds another. Reads only."""
    return owned_folder.check_resumable(output, RUN_FOLDER, fingerprint, overwrite)


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
    staging, state = owned_folder.open_staging(output, RUN_FOLDER, fingerprint, overwrite)
    return RunLayout(staging), state == "resume"


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
    owned_folder.drop(layout.root, [*layout.staging_only,
                                    *([] if keep_optimizer_state else [RunLayout.CHECKPOINTS])])


def commit(layout: RunLayout, output: Path) -> None:
    """Moves the fully written (and pruned) staging folder into place, replacing an earlier RUN only."""
    owned_folder.commit(layout.root, Path(output), RUN_FOLDER)
