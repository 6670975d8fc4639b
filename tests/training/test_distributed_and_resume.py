"""Real processes: MirroredStrategy on two logical CPUs, two workers on 127.0.0.1, SIGKILL resume."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

DRIVER = Path(__file__).with_name("train_driver.py")
TIMEOUT = 420


def _env(**extra):
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run(args, **extra_env):
    completed = subprocess.run([sys.executable, str(DRIVER), *args], capture_output=True, text=True,
                               env=_env(**extra_env), timeout=TIMEOUT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _weights(run_dir) -> list:
    from kerastune_nlp.inference import load_run

    return load_run(run_dir).model.get_weights()


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_matches_one_device(tiny_bert_no_dropout, tmp_path):
    common = ["--backbone", str(tiny_bert_no_dropout), "--logical-cpus", "2", "--epochs", "1"]
    single = _run([*common, "--output", str(tmp_path / "single"), "--strategy", "none"])
    mirrored = _run([*common, "--output", str(tmp_path / "mirrored"), "--strategy", "mirrored"])
    assert single["training"]["replicas"] == 1
    assert mirrored["training"]["replicas"] == 2
    assert mirrored["training"]["per_replica_batch_size"] == 4
    assert mirrored["training"]["optimizer_updates"] == single["training"]["optimizer_updates"] > 0
    # Same global batches, gradients summed over replicas: the same model.
    for a, b in zip(_weights(tmp_path / "single"), _weights(tmp_path / "mirrored")):
        np.testing.assert_allclose(a, b, atol=1e-5)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_on_localhost_finish_with_identical_weights(tiny_bert_no_dropout, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    output = tmp_path / "run"
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, str(DRIVER), "--backbone", str(tiny_bert_no_dropout), "--output", str(output),
             "--strategy", "multiworker", "--epochs", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(TF_CONFIG=tf_config)))
    outputs = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            process.kill()
    assert [o["training"]["strategy"] for o in outputs] == ["multiworker", "multiworker"]
    assert outputs[0]["training"]["replicas"] == 2
    # The chief writes the run; the other worker its own copy beside it.
    assert outputs[0]["run_dir"] == str(output)
    assert outputs[1]["run_dir"] == str(tmp_path / "run.worker-1")
    for a, b in zip(_weights(output), _weights(tmp_path / "run.worker-1")):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_from_the_last_backup(tiny_bert, tmp_path):
    output, progress = tmp_path / "run", tmp_path / "progress.jsonl"
    args = ["--backbone", str(tiny_bert), "--output", str(output), "--epochs", "3", "--batch-size", "6",
            "--sentences", "30", "--checkpoint-every", "4", "--progress-file", str(progress)]
    victim = subprocess.Popen([sys.executable, str(DRIVER), *args, "--sleep-per-batch", "0.2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline, steps_per_epoch = time.monotonic() + TIMEOUT, None
        while time.monotonic() < deadline and victim.poll() is None:
            steps = [json.loads(line) for line in progress.read_text().splitlines()] if progress.exists() else []
            if steps_per_epoch is None and any(s["epoch"] == 1 for s in steps):
                steps_per_epoch = sum(s["epoch"] == 0 for s in steps)
            # Kill in the middle of the second epoch, a few steps after a backup.
            if steps_per_epoch and len(steps) >= steps_per_epoch + steps_per_epoch // 2:
                break
            time.sleep(0.02)
        assert victim.poll() is None, victim.stderr.read()[-3000:]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        victim.kill()
    killed_at = len(progress.read_text().splitlines())
    assert steps_per_epoch and steps_per_epoch < killed_at < 2 * steps_per_epoch
    assert not output.exists() and (output.with_name("run.partial") / "backup").exists()

    progress.unlink()
    resumed = _run(args)
    steps = [json.loads(line) for line in progress.read_text().splitlines()]
    first = steps[0]["epoch"] * steps_per_epoch + steps[0]["batch"]
    # Restarted just after a backup (every 4 steps of an epoch, and at epoch
    # ends), not at zero, and at most 4 steps before the kill ...
    assert steps[0]["batch"] % 4 == 0 and killed_at - 4 <= first <= killed_at, (steps[0], killed_at)
    # ... and finished with the same total number of updates as an unbroken run.
    assert first + len(steps) == 3 * steps_per_epoch
    assert resumed["training"]["optimizer_updates"] == 3 * steps_per_epoch
    assert (output / "metrics.json").exists() and not output.with_name("run.partial").exists()
