"""Real processes: a search killed mid-trial resumes; a chief and two workers share one search on 127.0.0.1."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("tune_driver.py")
TIMEOUT = 420


def _env(**extra):
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2")
    for name in ("TF_CONFIG", "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(name, None)
    env.update(extra)
    return env


def _steps(progress: Path) -> list[dict]:
    return [json.loads(line) for line in progress.read_text().splitlines()] if progress.exists() else []


@pytest.mark.slow
def test_a_search_killed_mid_trial_resumes_that_trial_from_its_backup(tiny_bert, tmp_path):
    search_dir, progress = tmp_path / "search", tmp_path / "progress.jsonl"
    # 64 examples / batch 8 = 8 steps per epoch, 2 epochs per trial, a backup every 2 steps.
    args = [sys.executable, str(DRIVER), "--backbone", str(tiny_bert), "--search-dir", str(search_dir),
            "--max-trials", "2", "--epochs", "2", "--progress-file", str(progress)]
    victim = subprocess.Popen([*args, "--sleep-per-batch", "0.15"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + TIMEOUT
        # Kill in the second trial's first epoch, after its first backups (steps 2 and 4).
        while time.monotonic() < deadline and victim.poll() is None and len(_steps(progress)) < 16 + 5:
            time.sleep(0.02)
        assert victim.poll() is None, victim.stderr.read()[-3000:]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        victim.kill()
    killed_at = len(_steps(progress))
    assert 16 < killed_at < 24
    first_trial = json.loads(next(search_dir.glob("trials/trial_*0/trial_result.json")).read_text())
    assert first_trial["status"] == "completed"
    finished_mtime = next(search_dir.glob("trials/trial_*0/trial_result.json")).stat().st_mtime

    progress.unlink()
    completed = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=TIMEOUT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    output = json.loads(completed.stdout.strip().splitlines()[-1])
    assert [t["status"] for t in output["trials"]] == ["completed", "completed"]
    # The finished trial was not rerun ...
    assert next(search_dir.glob("trials/trial_*0/trial_result.json")).stat().st_mtime == finished_mtime
    assert output["trials"][1]["resumed"] is True and output["trials"][1]["epochs_run"] == 2
    # ... and the interrupted one restarted at its last backup (a multiple of 2 steps), not at step 0.
    steps = _steps(progress)
    first = steps[0]["epoch"] * 8 + steps[0]["batch"]
    assert first % 2 == 0 and killed_at - 16 - 2 <= first <= killed_at - 16, (steps[0], killed_at)
    assert first + len(steps) == 16
    assert (search_dir / "trials.csv").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_on_localhost_share_one_search(tiny_bert, tmp_path):
    search_dir, progress = tmp_path / "search", tmp_path / "progress.jsonl"
    port = str(_free_port())
    common = [sys.executable, str(DRIVER), "--backbone", str(tiny_bert), "--search-dir", str(search_dir),
              "--max-trials", "4", "--epochs", "1", "--progress-file", str(progress)]
    processes = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = _env(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=port)
            processes[tuner_id] = subprocess.Popen(common, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                   text=True, env=env)
            if tuner_id == "chief":
                time.sleep(3)  # let the chief's oracle server start first
        outputs = {}
        for tuner_id, process in processes.items():
            out, err = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, (tuner_id, err[-3000:])
            outputs[tuner_id] = json.loads(out.strip().splitlines()[-1])
    finally:
        for process in processes.values():
            process.kill()
    # Four trials in all, shared between the two workers; the chief ran none and wrote the results.
    workers = {step["tuner"] for step in _steps(progress)}
    assert workers == {"tuner0", "tuner1"}
    trials = outputs["chief"]["trials"]
    assert len(trials) == 4 and all(t["status"] == "completed" for t in trials)
    assert "trials.csv" in outputs["chief"]["files"] and outputs["tuner0"]["files"] == []
    assert (search_dir / "best_config.yaml").exists()
