"""Which student a distillation trains, and how it gets its first weights.

Two kinds of student:

- a subset of the teacher's own encoder blocks (`--student-layers 3` keeps 3
  of 6, `--keep-layers 0,2,4` names them), initialised from the fine-tuned
  teacher (embeddings, kept blocks and the task head) or, with
  `init="pretrained"`, from the teacher's pretrained backbone with a fresh
  head. A user with one pretrained model can distil.
- a smaller backbone the user names (`--student-backbone`), with its own
  pretrained weights and a fresh head. It must tokenize as the teacher does:
  both read the same token ids in every batch.

Planning (`plan_student`) reads configs and tokenizers only, so a bad
request is refused before TensorFlow builds anything.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

from kerastune_nlp.backbones import families
from kerastune_nlp.errors import ConfigError

logger = logging.getLogger("kerastune_nlp.distillation")

INITS = ("teacher", "pretrained")


@dataclasses.dataclass(frozen=True)
class StudentPlan:
    """What the student is.

    Args:
        kind: str. "layers" (a subset of the teacher's blocks) or "backbone" (a named one).
        config: the student's backbone `PretrainedConfig`.
        layers: tuple of int. The teacher's blocks kept, bottom first ("layers" only).
        init: str. "teacher" or "pretrained" ("layers" only).
        resolved: the `ResolvedBackbone` whose pretrained weights start the
            student: the named backbone, or the teacher's pretrained one
            for `init="pretrained"`; None when the teacher run starts it.
        description: str. One line for reports.
    """

    kind: str
    config: object
    layers: tuple = ()
    init: str = "teacher"
    resolved: object = None
    description: str = ""

    def settings(self) -> dict:
        """What identifies this student in a run's fingerprint and report."""
        return {"kind": self.kind, "layers": list(self.layers), "init": self.init,
                "backbone": str(self.resolved.name) if self.resolved is not None else None}


def spread_layers(total: int, keep: int) -> list[int]:
    """`keep` of `total` blocks, evenly spread with the top block kept.

    The top block is kept because the teacher's head was trained on its
    output. 3 of 6 -> [1, 3, 5]; 6 of 12 -> [1, 3, 5, 7, 9, 11]; 2 of 6 -> [2, 5].
    """
    return [round((i + 1) * total / keep) - 1 for i in range(keep)]


def parse_layer_list(text: str) -> tuple[int, ...]:
    """"0,2,4" -> (0, 2, 4); a clear error for anything else."""
    try:
        layers = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"Expected comma-separated block numbers such as 0,2,4. Received: `keep_layers`="
                          f"{text!r}.") from None
    if not layers:
        raise ConfigError(f"Expected at least one block number in `keep_layers`. Received: {text!r}.")
    return layers


def choose_layers(total: int, student_layers: int | None, keep_layers: Sequence[int] | None,
                  keep_first: bool = False) -> tuple[int, ...]:
    """The teacher's blocks the student keeps, checked against the teacher's depth.

    With `keep_first` (families whose block 0 differs from the others, see
    `EncoderConfig.KEEPS_FIRST_LAYER`), a count keeps block 0 and spreads the
    rest over blocks 1.. with the top one kept: 2 of 4 -> (0, 3).
    """
    if keep_layers:
        layers = tuple(int(i) for i in keep_layers)
        bad = [i for i in layers if not 0 <= i < total]
        if bad:
            raise ConfigError(
                f"The teacher's backbone has {total} blocks, numbered 0 to {total - 1}. Received: "
                f"`keep_layers`={list(layers)}, with {bad} outside that range. Pick blocks in 0..{total - 1}."
            )
        if list(layers) != sorted(set(layers)):
            raise ConfigError(f"Expected `keep_layers` in increasing order without repeats. Received: "
                              f"{list(layers)}. Pass e.g. {sorted(set(layers))}.")
        return layers
    if student_layers is None:
        student_layers = max(1, total // 2)  # the default student: half the depth
    if not 1 <= student_layers <= total:
        raise ConfigError(
            f"A student keeps at most the teacher's {total} blocks. Received: `student_layers`={student_layers}."
            f" Pass --student-layers between 1 and {total} (e.g. {max(1, total // 2)}, half the depth)."
        )
    if keep_first:
        return (0, *(1 + i for i in spread_layers(total - 1, student_layers - 1)))
    return tuple(spread_layers(total, student_layers))


def subset_config(config, layers):
    """A copy of a backbone config (ours, see `backbones.load_config`) made of the blocks `layers`.

    `layers` is the kept blocks (a sequence; ModernBERT's config keeps each
    one's attention kind and refuses a subset without block 0) or a count
    (the first `layers` blocks).
    """
    if isinstance(layers, int):
        layers = range(layers)
    return config.with_layers(tuple(layers))


def plan_student(teacher_config, teacher_tokenizer, *, student_layers=None, keep_layers=None,
                 student_backbone: str | None = None, init: str = "teacher", teacher_backbone: str = "",
                 sample_texts: Sequence = (), allow_pickle: bool = False) -> StudentPlan:
    """Checks the student request against the teacher and says what to build.

    Args:
        teacher_config: the teacher run's backbone config.
        teacher_tokenizer: the teacher run's tokenizer.
        student_layers, keep_layers: a subset of the teacher's blocks.
        student_backbone: str or None. A smaller pretrained backbone instead.
        init: str. "teacher" (fine-tuned weights and head) or "pretrained".
        teacher_backbone: str. The backbone the teacher was fine-tuned from
            (for `init="pretrained"`).
        sample_texts: a few training inputs (word lists or strings) on which
            a named student's tokenizer must give the teacher's ids.
    """
    from kerastune_nlp.models import backbones

    if init not in INITS:
        raise ConfigError(f"Expected `student_init` in {INITS}. Received: {init!r}.")
    if student_backbone:
        if student_layers is not None or keep_layers:
            raise ConfigError("Pass either --student-backbone or --student-layers / --keep-layers, not both.")
        resolved = backbones.resolve_backbone(student_backbone, allow_pickle=allow_pickle)
        check_same_tokens(teacher_tokenizer, backbones.load_tokenizer(resolved.directory), student_backbone,
                          sample_texts)
        config = backbones.load_config(resolved)
        return StudentPlan("backbone", config, init="pretrained", resolved=resolved,
                           description=f"{student_backbone} ({families.num_layers(config)} blocks, pretrained, "
                                       "new head)")
    total = families.num_layers(teacher_config)
    layers = choose_layers(total, student_layers, keep_layers,
                           keep_first=getattr(teacher_config, "KEEPS_FIRST_LAYER", False))
    config = subset_config(teacher_config, layers)  # refuses a subset the family cannot hold
    resolved = None
    if init == "pretrained":
        resolved = backbones.resolve_backbone(teacher_backbone, allow_pickle=allow_pickle)
    source = "the fine-tuned teacher (blocks and head)" if init == "teacher" else f"{teacher_backbone} (new head)"
    return StudentPlan("layers", config, layers, init, resolved,
                       description=f"{len(layers)} of the teacher's {total} blocks {list(layers)}, from {source}")


def check_same_tokens(teacher_tokenizer, student_tokenizer, student_name: str, sample_texts: Sequence) -> None:
    """Refuses a student whose tokenizer gives other ids than the teacher's (both read one batch of ids)."""
    teacher_vocab, student_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if teacher_vocab != student_vocab:
        differing = sorted(set(teacher_vocab.items()) ^ set(student_vocab.items()))[:3]
        raise ConfigError(
            f"The student backbone {student_name!r} tokenizes differently from the teacher (vocabularies of "
            f"{len(student_vocab)} and {len(teacher_vocab)} entries; e.g. {differing}). Distillation feeds "
            "both models the same token ids. Pick a student with the teacher's tokenizer, or make the student "
            "from the teacher's own blocks with --student-layers."
        )
    for text in list(sample_texts)[:32]:
        words = isinstance(text, (list, tuple))
        teacher_ids = teacher_tokenizer(list(text) if words else text, is_split_into_words=words)["input_ids"]
        student_ids = student_tokenizer(list(text) if words else text, is_split_into_words=words)["input_ids"]
        if teacher_ids != student_ids:
            raise ConfigError(
                f"The student backbone {student_name!r} has the teacher's vocabulary but splits text "
                f"differently (e.g. {text!r}: {student_ids[:12]} vs the teacher's {teacher_ids[:12]}), "
                "probably another lower-casing or normalisation. Pick a student with the teacher's tokenizer."
            )


def build_subset_backbone(source_backbone, config, layers: Sequence[int]):
    """A backbone of `config` holding `source_backbone`'s embeddings and the blocks `layers`.

    Variables outside the blocks (embeddings, pooler, final norms) are
    matched by checkpoint name; the i-th student block gets block `layers[i]`,
    which must have the same variables (`config` from `subset_config(..., layers)`
    gives each ModernBERT block its teacher block's attention kind).
    """
    from kerastune_nlp.backbones.registry import get_family
    from kerastune_nlp.models import backbones

    student = backbones.build_backbone_model(config)
    source_blocks, student_blocks = families.encoder_layers(source_backbone), families.encoder_layers(student)
    for position, (target, index) in enumerate(zip(student_blocks, layers)):
        source_block = source_blocks[index]
        shapes = [tuple(w.shape) for w in source_block.weights], [tuple(w.shape) for w in target.weights]
        kinds = getattr(source_block, "layer_type", None), getattr(target, "layer_type", None)
        if shapes[0] != shapes[1] or kinds[0] != kinds[1]:
            raise ConfigError(
                f"The teacher's block {index} cannot become the student's block {position}: they differ "
                f"(variables {shapes[0]} vs {shapes[1]}; attention {kinds[0]} vs {kinds[1]}). Build the "
                "student's config with `subset_config(teacher_config, layers)`."
            )
        target.set_weights(source_block.get_weights())
    in_blocks = {id(v) for block in student_blocks for v in block.weights}
    weight_map = get_family(config.model_type).weight_map
    # Outside the blocks, variables match by their checkpoint (PyTorch) name.
    source = {name: variable for variable, name, _ in weight_map(source_backbone)}
    missing = []
    for variable, name, _ in weight_map(student):
        if id(variable) in in_blocks:
            continue
        match = source.get(name)
        if match is None or tuple(match.shape) != tuple(variable.shape):
            missing.append(name)
            continue
        variable.assign(match)
    if missing:
        raise ConfigError(f"Cannot copy the teacher's weights into the layer-subset student: no match for "
                          f"{missing[:5]}. Distil into a named --student-backbone instead.")
    return student


def copy_head(source_model, student_model, backbone) -> list[str]:
    """Copies the weights of every non-backbone layer (the task head) by layer name; returns the names."""
    copied = []
    for layer in student_model.layers:
        if layer is backbone or not layer.weights:
            continue
        layer.set_weights(source_model.get_layer(layer.name).get_weights())
        copied.append(layer.name)
    return copied


def weights_signature(path: Path) -> str:
    """Identifies a weights file cheaply (name, size, modification time) for a run's fingerprint."""
    stat = Path(path).stat()
    return f"{Path(path).name}:{stat.st_size}:{stat.st_mtime_ns}"
