"""Start-up of `kerastune-nlp predict`: cold calls on a run directory, end to end and by phase.

Each call is a fresh process, as a user scripting predict calls pays it:

- `end to end`: the `kerastune-nlp` script (or `python -m kerastune_nlp.cli`
  with `--module`) predicting the given text(s), wall time from spawn to
  exit, median of `--repeats`;
- `phases`: the same command run in a child process that times where the
  time goes (median per phase over `--repeats`):
  `python start` (spawn, interpreter and site, until the child's first
  line), `import cli`, `import tensorflow`
  (tensorflow + tf_keras), `import transformers`, `tokenizer` (loading it),
  `build model` (backbone + head), `load weights`, `first model call`
  (tracing included), `other model calls`, `predict + print` (the rest of
  `main`), `exit` (from the end of `main` until the process is gone:
  atexit handlers, TensorFlow's shutdown).

TensorFlow and transformers are imported up front in the child so that
their cost is a phase of its own; in the real command they load inside the
later phases, so the sum is the same. Nothing here asserts a time.

    python benchmarks/predict_startup.py saved_models/wnut17 --repeats 5
    python benchmarks/predict_startup.py saved_models/trec "Who wrote Hamlet ?" --json-out startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("python start", "import cli", "import tensorflow", "import transformers", "tokenizer",
          "build model", "load weights", "first model call", "other model calls", "predict + print", "exit")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run directory (or any path `kerastune-nlp predict` takes)")
    parser.add_argument("text", nargs="*", default=["Barack Obama visited Paris last week ."])
    parser.add_argument("--repeats", type=int, default=5, help="cold calls per measurement (default 5)")
    parser.add_argument("--module", action="store_true",
                        help="time `python -m kerastune_nlp.cli` instead of the kerastune-nlp script")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--json-out", default=None, help="also write every number here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _command(args) -> list[str]:
    script = Path(sys.executable).with_name("kerastune-nlp")
    if not args.module and script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "kerastune_nlp.cli"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def end_to_end(args) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (user + system, all threads) of each cold call."""
    command = [*_command(args), "predict", args.run, *args.text]
    seconds, cpu = [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), _children_cpu()
        done = subprocess.run(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seconds.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - cpu_start)
        if done.returncode:
            sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        if done.stderr.strip():
            print(f"stderr of the call:\n{done.stderr.strip()}", file=sys.stderr)
    return seconds, cpu


def phases(args) -> list[dict]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", args.run, *args.text]
    results = []
    for _ in range(args.repeats):
        spawned = time.time()
        done = subprocess.run(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ended = time.time()
        if done.returncode:
            sys.exit(f"phase child failed ({done.returncode}):\n{done.stderr[-2000:]}")
        timed = json.loads(done.stdout.strip().splitlines()[-1])
        began, finished = timed.pop("began"), timed.pop("finished")
        timed["python start"] = began - spawned
        timed["exit"] = ended - finished
        timed["total"] = ended - spawned
        results.append(timed)
    return results


def child(args) -> None:
    """Runs `main(["predict", ...])` with timers around the phases; prints them as one JSON line."""
    import contextlib
    import io

    times = dict.fromkeys(PHASES[1:-1], 0.0)
    times["began"] = time.time()
    clock = time.perf_counter
    start = clock()
    import kerastune_nlp.cli as cli
    from kerastune_nlp.cli import console

    times["import cli"] = clock() - start
    # As `main` does before anything loads (quiet TensorFlow's native start-up).
    console.configure(False)
    mark = clock()
    import kerastune_nlp._tf  # noqa: F401

    times["import tensorflow"] = clock() - mark
    mark = clock()
    from kerastune_nlp.models import backbones

    backbones._auto_tokenizer()
    times["import transformers"] = clock() - mark

    def timed(owner, name, phase):
        original = getattr(owner, name)

        def wrapper(*a, **k):
            began = clock()
            try:
                return original(*a, **k)
            finally:
                times[phase] += clock() - began

        setattr(owner, name, wrapper)

    from kerastune_nlp.inference import predictor as predictor_module
    from kerastune_nlp.inference.predictor import Predictor
    from kerastune_nlp.runs import weights

    timed(backbones, "load_tokenizer", "tokenizer")
    timed(weights, "load_weights", "load weights")
    # Model building = rebuild_model minus what it spends in the tokenizer and the weights.
    timed(predictor_module, "rebuild_model", "build model")
    calls = {"n": 0}
    original_run_batch = Predictor.run_batch

    def run_batch(self, features):
        began = clock()
        try:
            return original_run_batch(self, features)
        finally:
            calls["n"] += 1
            times["first model call" if calls["n"] == 1 else "other model calls"] += clock() - began

    Predictor.run_batch = run_batch
    mark = clock()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["predict", args.run, *args.text])
    if code:
        sys.exit(code)
    main_seconds = clock() - mark
    times["build model"] -= times["tokenizer"] + times["load weights"]
    times["predict + print"] = main_seconds - sum(times[p] for p in ("tokenizer", "build model", "load weights",
                                                                        "first model call", "other model calls"))
    times["finished"] = time.time()
    print(json.dumps(times))
    sys.stdout.flush()
    # End as the command does when run as a program (without the interpreter's teardown, where
    # the package has `console.exit_now`), so `exit` is what a user waits for.
    if hasattr(console, "exit_now"):
        console.exit_now(0)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    report = {"run": args.run, "repeats": args.repeats, "python": sys.version.split()[0], "cpus": os.cpu_count(),
              "load_average": os.getloadavg()[0]}
    if not args.skip_end_to_end:
        command = _command(args)
        seconds, cpu = end_to_end(args)
        report["end_to_end"] = {"command": " ".join(command), "seconds": seconds, "cpu_seconds": cpu,
                                "median": statistics.median(seconds), "median_cpu": statistics.median(cpu)}
        print(f"end to end ({Path(command[0]).name if len(command) == 1 else 'python -m kerastune_nlp.cli'} "
              f"predict, {args.repeats} cold calls): median {statistics.median(seconds):.2f}s "
              f"(min {min(seconds):.2f}s, max {max(seconds):.2f}s); CPU median {statistics.median(cpu):.2f}s")
    runs = phases(args)
    medians = {phase: statistics.median(r[phase] for r in runs) for phase in (*PHASES, "total")}
    report["phases"] = {"runs": runs, "median": medians}
    width = max(map(len, medians))
    print(f"\nphases (median of {args.repeats} cold calls, seconds):")
    for phase, value in medians.items():
        print(f"  {phase:<{width}}  {value:6.2f}")
    print(f"load average at start: {report['load_average']:.2f} on {report['cpus']} CPUs")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
