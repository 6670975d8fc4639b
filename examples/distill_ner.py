"""Distil a fine-tuned NER model into a student with half its encoder blocks.

Offline on bundled data: without --teacher, a teacher is first fine-tuned
from the bundled all-MiniLM-L6-v2 on bundled WNUT-17 (6 blocks), then a
3-block student made from the teacher's own blocks learns from the gold tags
and the teacher's softened tag distributions. The printed table compares
teacher and student: parameters, size, CPU latency at batch 1 and entity F1.

    python examples/distill_ner.py --quick                 # ~4 minutes: 800-sentence subset
    python examples/distill_ner.py                         # full WNUT-17 (teacher ~5 min, student ~4 min)
    python examples/distill_ner.py --teacher saved_models/ner-wnut17-... --student-layers 2

The student is a normal run directory: `kerastune-nlp evaluate`, `predict`,
`export` and `serve` read it. `kerastune-nlp distill --help` has every option.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", help="a finished NER run directory (default: fine-tune one first)")
    parser.add_argument("--output", default=None, help="folder for the teacher and student runs "
                                                       "(default saved_models/distill-ner-<time>)")
    parser.add_argument("--quick", action="store_true", help="the bundled data's quick subset (800 training "
                                                             "sentences), for a run of a few minutes")
    parser.add_argument("--student-layers", type=int, default=None, help="blocks kept (default half the teacher's)")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the gold-tag loss (default 0.5)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    from kerastune_nlp.cli import console

    console.configure(args.verbose)
    import kerastune_nlp as kt
    from kerastune_nlp.distillation import DistillConfig, distill
    from kerastune_nlp.distillation.report import format_report
    from kerastune_nlp.errors import KerastuneNLPError

    root = Path(args.output or f"saved_models/distill-ner-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        config = DistillConfig(student_layers=args.student_layers, temperature=args.temperature, alpha=args.alpha)
        teacher = Path(args.teacher) if args.teacher else root / "teacher"
        if not args.teacher:
            print(f"Fine-tuning the teacher (bundled MiniLM, WNUT-17{' quick subset' if args.quick else ''}) "
                  f"into {teacher}", flush=True)
            data = kt.DataConfig(quick=args.quick)
            recipe = kt.get_task("ner")().default_train_config()
            if args.quick:
                import dataclasses

                from kerastune_nlp.config import QUICK_TRAINING

                recipe = dataclasses.replace(recipe, **QUICK_TRAINING)
            kt.train("ner", output_dir=teacher, data_config=data, train_config=recipe,
                     verbose=console.fit_verbosity())
        print(f"Distilling {teacher} into {root / 'student'}", flush=True)
        result = distill(teacher, root / "student", config=config, verbose=console.fit_verbosity())
    except KerastuneNLPError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    block = result.metrics["distillation"]
    print(f"\nStudent: {block['recipe']['description']}")
    print(format_report(block))
    print(f"\nStudent run directory: {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
