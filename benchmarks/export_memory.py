"""Peak memory and time of `kerastune-nlp export`, per step, as a user's machine sees them.

Runs the export command in a child process and samples the resident memory
(RSS) of its whole process tree from /proc every 50 ms (Linux only), so
converters that run in-process or in subprocesses are both counted. Each
line the command prints is timestamped; the progress lines
(`export: onnx ... 41.2 s`) close a step, and older versions' `exporting
onnx` lines open one, so the peak of every step is known. It also counts
the converter chatter the command let through.

    python benchmarks/export_memory.py                      # trains a quick MiniLM NER run first (~1 min)
    python benchmarks/export_memory.py --run saved_models/wnut17 [--formats onnx,onnx-int8] [--json-out r.json]
    python benchmarks/export_memory.py --run RUN --code /path/to/other/checkout   # the same, another version

Not a test: it asserts nothing. Run it on an idle machine; memory does not
depend on the load, times do.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")
STEP_END = re.compile(r"export: (\S.*?) \.\.\. ([\d.]+) s")
STEP_START = re.compile(r"^exporting (\S+)$")  # versions before the progress lines
CHATTER = ("Please consider to run pre-processing", "Quantization parameters for tensor",
           "Ignore MatMul due to non constant B", "XNNPACK delegate")


def tree_rss(pid: int) -> tuple[int, int]:
    """(bytes resident, processes) of `pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total, count, todo = 0, 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
            count += 1
        except OSError:
            continue
        todo.extend(children.get(current, []))
    return total, count


def run_sampled(command: list[str], env: dict, cwd: str) -> dict:
    """Runs `command`, returning its timestamped output lines and RSS samples."""
    started = time.perf_counter()
    # `python -m` puts the working directory first on sys.path: run in the checkout being measured.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    samples: list[tuple[float, int, int]] = []

    def sample():
        while process.poll() is None:
            rss, count = tree_rss(process.pid)
            samples.append((time.perf_counter() - started, rss, count))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = []
    for raw in process.stdout:
        lines.append((time.perf_counter() - started, raw.decode(errors="replace").rstrip("\n")))
    process.wait()
    sampler.join()
    return {"returncode": process.returncode, "seconds": time.perf_counter() - started, "lines": lines,
            "samples": samples}


def steps_of(result: dict) -> list[dict]:
    """Per step: seconds, RSS at its start and end, and the peak RSS during it."""
    marks = []  # (time, name, kind)
    for at, line in result["lines"]:
        if (match := STEP_END.search(line)):
            marks.append((at, match.group(1), "end"))
        elif (match := STEP_START.match(line.strip())):
            marks.append((at, match.group(1), "start"))
    samples = result["samples"]

    def rss_at(moment):
        before = [rss for at, rss, _ in samples if at <= moment]
        return before[-1] if before else 0

    # A progress line names the window it closes; an `exporting X` line (older versions) names the one it
    # opens. What follows the last progress line is the report and the exit.
    steps, previous, current = [], 0.0, "start-up"
    for at, mark, kind in marks + [(result["seconds"], None, "final")]:
        name = mark if kind == "end" else current
        window = [rss for t, rss, _ in samples if previous <= t <= at] or [0]
        steps.append({"step": name, "seconds": round(at - previous, 1), "rss_start_gb": round(rss_at(previous) / 1e9, 2),
                      "rss_peak_gb": round(max(window) / 1e9, 2), "rss_end_gb": round(rss_at(at) / 1e9, 2)})
        previous, current = at, (mark if kind == "start" else "report and exit")
    return [s for s in steps if s["seconds"] > 0]


def quick_run(folder: Path, env: dict) -> Path:
    run = folder / "ner-quick"
    subprocess.run([sys.executable, str(ROOT / "examples" / "ner_conll.py"), "--quick", "--epochs", "1", "--output",
                    str(run)], check=True, env=env, stdout=subprocess.DEVNULL)
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run directory to export (default: train a quick MiniLM NER run, 1 epoch)")
    parser.add_argument("--formats", help="as `kerastune-nlp export --formats` (default: the command's default)")
    parser.add_argument("--code", default=str(ROOT), help="checkout whose kerastune_nlp runs (default: this one)")
    parser.add_argument("--output", help="export folder (default: a temporary one, removed after)")
    parser.add_argument("--json-out", help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    if not Path("/proc/self/statm").exists():
        print("This benchmark reads /proc (Linux only).", file=sys.stderr)
        return 2
    args.code = str(Path(args.code).resolve())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([args.code, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    with tempfile.TemporaryDirectory(prefix="export-memory-") as scratch:
        run = Path(args.run).resolve() if args.run else quick_run(Path(scratch), env)
        output = Path(args.output).resolve() if args.output else Path(scratch) / "export"
        command = [sys.executable, "-m", "kerastune_nlp.cli", "export", str(run), "--output", str(output)]
        if args.formats:
            command += ["--formats", args.formats]
        result = run_sampled(command, env, args.code)
    text = "\n".join(line for _, line in result["lines"])
    peak = max(result["samples"], key=lambda s: s[1]) if result["samples"] else (0, 0, 0)
    summary = {"code": args.code, "run": str(run), "formats": args.formats or "default",
               "returncode": result["returncode"], "seconds": round(result["seconds"], 1),
               "peak_rss_gb": round(peak[1] / 1e9, 2), "peak_at_seconds": round(peak[0], 1),
               "max_processes": max((s[2] for s in result["samples"]), default=0),
               "output_lines": len(result["lines"]),
               "chatter_lines": sum(any(c in line for c in CHATTER) for _, line in result["lines"]),
               "steps": steps_of(result)}
    print(f"{'step':28} {'seconds':>8} {'RSS start':>10} {'peak':>7} {'end':>7}  (GB, whole process tree)")
    for step in summary["steps"]:
        print(f"{step['step'][:28]:28} {step['seconds']:8.1f} {step['rss_start_gb']:10.2f} {step['rss_peak_gb']:7.2f} "
              f"{step['rss_end_gb']:7.2f}")
    print(f"\nexit {summary['returncode']}; {summary['seconds']} s; peak RSS {summary['peak_rss_gb']} GB at "
          f"{summary['peak_at_seconds']} s; at most {summary['max_processes']} process(es); "
          f"{summary['output_lines']} output lines, {summary['chatter_lines']} of them converter chatter")
    if result["returncode"] != 0:
        print(text[-3000:], file=sys.stderr)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    return 0 if result["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
