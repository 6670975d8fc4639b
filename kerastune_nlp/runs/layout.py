"""Where each file of a run directory sits, and how small files are written."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """The paths inside one run directory (finished or staged).

    Args:
        root: Path. The run directory (or its `<run>.partial` staging folder).
    """

    root: Path

    # The model's weights only (legacy HDF5: no optimizer slots).
    WEIGHTS = "model.h5"
    TOKENIZER = "tokenizer"
    BACKBONE_CONFIG = "backbone_config"
    MANIFEST = "run_config.json"
    METRICS = "metrics.json"
    HISTORY = "history.json"
    LOGS = "logs"
    # Staging only: crash backups, best-epoch checkpoint, the run's fingerprint
    # and the per-epoch log that survives a resume.
    BACKUP = "backup"
    CHECKPOINTS = "checkpoints"
    BEST_CHECKPOINT = "checkpoints/best.ckpt"
    FINGERPRINT = "fingerprint.json"
    EPOCH_LOG = "epochs.jsonl"

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    @property
    def weights(self) -> Path:
        return self.root / self.WEIGHTS

    @property
    def manifest(self) -> Path:
        return self.root / self.MANIFEST

    @property
    def best_checkpoint(self) -> Path:
        return self.root / self.BEST_CHECKPOINT

    @property
    def staging_only(self) -> tuple[str, ...]:
        """What a finished run does not keep (checkpoints stay on request)."""
        return (self.BACKUP, self.FINGERPRINT, self.EPOCH_LOG)


def partial_path(output: Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + PARTIAL_SUFFIX)


def write_json(path: Path, payload) -> None:
    """Writes JSON atomically (temp file in the same folder, then rename), mode 0644 less umask."""
    path = Path(path)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp",
                                     encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
    # NamedTemporaryFile creates files 0600; give them the mode every other file gets.
    os.chmod(handle.name, 0o666 & ~_umask())
    os.replace(handle.name, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_list(root: Path) -> list[str]:
    """Every file under `root`, relative and sorted (for the manifest)."""
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
