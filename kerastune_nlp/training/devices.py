"""Where and at what precision a run trains: distribution strategy, dtype policy, determinism.

Batch sizes are global: `TrainConfig.batch_size` examples per micro-step
across all replicas, each replica taking `batch_size // replicas`. The
input pipeline is handed to Keras whole and `fit` distributes it, so with
several workers every worker reads the same files and keeps its own shard.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.errors import ConfigError

logger = logging.getLogger("kerastune_nlp.training")


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"The TF_CONFIG environment variable is not valid JSON ({error}). Received: {raw[:200]!r}. "
            'Set it to e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}}.'
        ) from error


def _worker_count(tf_config: dict) -> int:
    cluster = tf_config.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def resolve_strategy(name: str) -> tf.distribute.Strategy:
    """Builds the `tf.distribute` strategy for `TrainConfig.strategy`.

    Create it before any other TensorFlow work in the process: collective
    (multi-worker) communication must be set up first.
    """
    tf_config = _tf_config()
    if name == "auto":
        if _worker_count(tf_config) > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "none"
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        # Without GPUs, mirror across the logical CPU devices (how this is tested).
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        if _worker_count(tf_config) < 1 or "task" not in tf_config:
            raise ConfigError(
                "`strategy`='multiworker' needs the TF_CONFIG environment variable with a cluster "
                "and this process's task, e.g. TF_CONFIG='{\"cluster\": {\"worker\": "
                "[\"10.0.0.1:12345\", \"10.0.0.2:12345\"]}, \"task\": {\"type\": \"worker\", "
                "\"index\": 0}}' on the first machine and index 1 on the second. "
                f"Received: TF_CONFIG={os.environ.get('TF_CONFIG', '')!r}."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as error:
            raise ConfigError(
                f"`strategy`='tpu' found no TPU ({error}). Run on a TPU VM (or set TPU_NAME), "
                "or pass --strategy auto."
            ) from error
        return tf.distribute.TPUStrategy(resolver)
    raise ConfigError(f"Unknown `strategy`. Received: `strategy`={name!r}.")


def strategy_name(strategy) -> str:
    # Check multi-worker first: its class is a MirroredStrategy relative.
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    return "none"


def check_batch_size(batch_size: int, strategy) -> int:
    """The per-replica batch; the global batch must split evenly over replicas."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ConfigError(
            f"Expected `batch_size` (the global batch) to be a multiple of the {replicas} replicas. "
            f"Received: `batch_size`={batch_size}. Pass --batch-size {replicas * max(1, batch_size // replicas)} "
            f"or {replicas * (batch_size // replicas + 1)}."
        )
    return batch_size // replicas


def is_chief(strategy) -> bool:
    """Whether this process writes the run directory (always, except other workers)."""
    if strategy_name(strategy) != "multiworker":
        return True
    resolver = strategy.cluster_resolver
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


def worker_output_dir(output_dir: Path, strategy) -> Path:
    """Other workers write a full run directory beside the chief's, `<name>.worker-<i>`."""
    if is_chief(strategy):
        return output_dir
    return output_dir.with_name(f"{output_dir.name}.worker-{strategy.cluster_resolver.task_id}")


def resolve_precision(name: str, strategy) -> str:
    """The precision `TrainConfig.precision` means here: a Keras dtype policy name or "autocast_bfloat16"."""
    if name != "auto":
        on_gpu = bool(tf.config.list_logical_devices("GPU"))
        if name == "mixed_float16" and not on_gpu:
            logger.warning("mixed_float16 without a GPU runs float16 on the CPU, which is slow; "
                           "autocast_bfloat16 is the CPU choice")
        if name in ("mixed_bfloat16", "autocast_bfloat16") and not on_gpu and not cpu_has_native_bfloat16():
            logger.warning("%s on a CPU without AVX512-BF16 or AMX emulates bfloat16 matmuls, which is "
                           "slower than float32", name)
        return name
    if strategy_name(strategy) == "tpu":
        return "mixed_bfloat16"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "float32"


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 matmul instructions (Linux: /proc/cpuinfo flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def keras_policy(precision: str) -> str:
    """The Keras dtype policy models are built under: autocast keeps float32 layers and swaps Dense matmuls."""
    return "float32" if precision == "autocast_bfloat16" else precision


@contextlib.contextmanager
def dtype_policy(policy: str):
    """Builds layers under `policy`, then puts the previous global policy back."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def make_deterministic(enabled: bool) -> None:
    """Deterministic kernels: the same seed then gives the same numbers run to run."""
    if enabled:
        tf.config.experimental.enable_op_determinism()
