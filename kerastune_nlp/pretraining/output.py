"""The output folder of continued pretraining: staged, fingerprinted, committed by one rename.

Everything is written into `<output>.partial/`, whose `fingerprint.json`
names the command's corpus, backbone and settings; the finished folder
appears by a rename once the weights, tokenizer and report are complete, so
a kill never leaves a half-written backbone. Rerunning the same command
resumes from the crash backup in the staging folder; a different command
meeting it stops and says what differs. An existing `<output>` is replaced
only with `overwrite` and only when its `pretraining.json` proves this
package wrote it. The protocol is `runs.owned_folder`'s; this module names
the folder's files.
"""

from __future__ import annotations

from pathlib import Path

from kerastune_nlp.runs import owned_folder

KIND = "kerastune_nlp.pretraining"
REPORT = "pretraining.json"
FINGERPRINT = owned_folder.FINGERPRINT
BACKUP = owned_folder.BACKUP
BEFORE = "eval_before.json"
HISTORY = "history.json"
# Staging-only files, removed before the rename.
STAGING_ONLY = (BACKUP, BEFORE, HISTORY)
FOLDER = owned_folder.FolderKind(KIND, REPORT, "folder", "`kerastune-nlp pretrain`")


def is_pretrain_output(path) -> bool:
    """True when `path` is a finished folder written by `continue_pretraining`."""
    return FOLDER.is_ours(path)


def commit(staging: Path, output: Path) -> None:
    """Drops staging-only files and moves the finished folder into place (replacing an earlier output)."""
    owned_folder.drop(staging, STAGING_ONLY)
    owned_folder.commit(staging, output, FOLDER)
