"""pytorch_model.bin read without PyTorch by the restricted unpickler (backbones/torch_pickle.py).

Fixtures from real torch.save (benchmarks/pickle_fixture.py, torch 2.13):
`bert-pickle/` holds the `bert` case's weights as transformers 4.x wrote
them with safe_serialization=False; `pickle-tensors/` holds views, offsets
and every dtype read (odd.bin, expected values in odd.npz), the same in two
shards with an index, and a pre-1.6 file (legacy.bin). Hostile and broken
files are written here with the standard library only.
"""

from __future__ import annotations

import os
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kerastune_nlp.backbones.checkpoint_files import find_weights_file, open_checkpoint
from kerastune_nlp.backbones.encoder import load_encoder
from kerastune_nlp.errors import BackboneError, UnsafeCheckpointError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "encoders"
BERT = FIXTURES / "bert-pickle"
TENSORS = FIXTURES / "pickle-tensors"
TOLERANCE = 1e-5


# A few protocol-2 pickle opcodes, enough to write what torch.save writes (and worse).
def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def _text(value: str) -> bytes:
    return b"X" + struct.pack("<I", len(value.encode())) + value.encode()


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _call(function: bytes, *args: bytes) -> bytes:
    return function + _tuple(*args) + b"R"


def _tensor(offset, size, stride, numel, hooks=None) -> bytes:
    storage = _tuple(_text("storage"), _global("torch", "FloatStorage"), _text("0"), _text("cpu"),
                     _int(numel)) + b"Q"  # BINPERSID
    hooks = hooks or _call(_global("collections", "OrderedDict"))
    return _call(_global("torch._utils", "_rebuild_tensor_v2"), storage, _int(offset),
                 _tuple(*map(_int, size)), _tuple(*map(_int, stride)), b"\x89", hooks)


def _state_dict(**tensors: bytes) -> bytes:
    return b"\x80\x02}(" + b"".join(_text(k) + v for k, v in tensors.items()) + b"u."


def _torch_zip(path: Path, data_pkl: bytes, storage: bytes = b"", byteorder=b"little") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", byteorder)
        archive.writestr("archive/data/0", storage)
    return path


def _batch(reference, name: str) -> dict:
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return {key: reference[f"{name}_{key}"] for key in keys}


def test_pickle_checkpoint_loads_and_matches_pytorch():
    encoder, report = load_encoder(BERT, use_pooler=True, allow_pickle=True)
    assert report.weights_file == BERT / "pytorch_model.bin"
    assert report.loaded == 39 and not report.not_in_encoder
    reference = np.load(FIXTURES / "bert" / "reference.npz")
    for name in ("padded", "long", "single"):
        outputs = encoder(_batch(reference, name), output_hidden_states=True)
        valid = reference[f"{name}_attention_mask"].astype(bool)
        last = np.abs(outputs["last_hidden_state"].numpy() - reference[f"{name}_last_hidden_state"])
        assert last[valid].max() <= TOLERANCE, (name, float(last[valid].max()))
        pooled = np.abs(outputs["pooled_output"].numpy() - reference[f"{name}_pooler_output"])
        assert pooled.max() <= TOLERANCE, (name, float(pooled.max()))
    # The same tensors, bit for bit, as the safetensors file they were saved from.
    with open_checkpoint(BERT / "pytorch_model.bin", allow_pickle=True) as pickled, \
            open_checkpoint(FIXTURES / "bert" / "model.safetensors") as safe:
        assert sorted(pickled.names) == sorted(safe.names)
        for name in safe.names:
            assert pickled.shape(name) == safe.shape(name)
            np.testing.assert_array_equal(pickled.get(name), safe.get(name))


def test_pickle_refused_without_allow_pickle():
    with pytest.raises(UnsafeCheckpointError) as folder_error:
        load_encoder(BERT)
    with pytest.raises(UnsafeCheckpointError) as file_error:
        open_checkpoint(BERT / "pytorch_model.bin")
    for error, named in ((folder_error, str(BERT)), (file_error, str(BERT / "pytorch_model.bin"))):
        message = str(error.value)
        assert named in message and "pytorch_model.bin" in message
        assert "save_pretrained(dir, safe_serialization=True)" in message
        assert "allow_pickle=True" in message


def test_views_offsets_and_dtypes_read_as_torch_saved_them():
    expected = np.load(TENSORS / "odd.npz")
    with open_checkpoint(TENSORS / "odd.bin", allow_pickle=True) as source:
        assert sorted(source.names) == sorted(expected.files)
        for name in expected.files:
            array = source.get(name)
            assert array.dtype == expected[name].dtype, name  # bfloat16 -> float32
            assert array.flags.c_contiguous and source.shape(name) == expected[name].shape, name
            np.testing.assert_array_equal(array, expected[name], err_msg=name)


def test_sharded_pickle_index():
    expected = np.load(TENSORS / "odd.npz")
    index = find_weights_file(TENSORS, allow_pickle=True)
    assert index.name == "pytorch_model.bin.index.json"
    with open_checkpoint(index, allow_pickle=True) as source:
        assert sorted(source.names) == sorted(expected.files)
        for name in expected.files:
            np.testing.assert_array_equal(source.get(name), expected[name], err_msg=name)


def test_big_endian_storage(tmp_path):
    values = np.arange(6, dtype=">f4")
    path = _torch_zip(tmp_path / "big.bin", _state_dict(w=_tensor(1, (2, 2), (1, 2), 6)),
                      values.tobytes(), byteorder=b"big")
    with open_checkpoint(path, allow_pickle=True) as source:
        np.testing.assert_array_equal(source.get("w"), [[1.0, 3.0], [2.0, 4.0]])
        assert source.get("w").dtype == np.float32


class _System:
    """Pickles as `os.system(command)` (STACK_GLOBAL in protocol 4, as pickle.dumps writes it)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


@pytest.mark.parametrize("where", ["top", "inside a tensor", "pickle.dumps protocol 4"])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, where):
    marker = tmp_path / "pwned"
    payload = _call(_global("os", "system"), _text(f"touch {marker}"))
    if where == "top":
        data_pkl, forbidden = b"\x80\x02" + payload + b".", "os.system"
    elif where == "inside a tensor":  # after a good tensor, as a tensor's backward_hooks
        data_pkl = _state_dict(a=_tensor(0, (4,), (1,), 4), b=_tensor(0, (4,), (1,), 4, payload))
        forbidden = "os.system"
    else:
        data_pkl = pickle.dumps({"weight": _System(f"touch {marker}")}, protocol=4)
        forbidden = f"{os.system.__module__}.system"  # posix.system on Linux
    live = data_pkl if where.startswith("pickle.dumps") else b"\x80\x02" + payload + b"."
    pickle.loads(live)  # the payload is live: plain pickle runs it
    assert marker.exists()
    marker.unlink()
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(BERT / "config.json", folder / "config.json")
    _torch_zip(folder / "pytorch_model.bin", data_pkl, np.zeros(4, "<f4").tobytes())
    with pytest.raises(UnsafeCheckpointError) as error:
        load_encoder(folder, allow_pickle=True)
    assert str(folder / "pytorch_model.bin") in str(error.value)
    assert f"`{forbidden}`" in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [
    ("builtins", "eval"),
    ("torch.nn.modules.linear", "Linear"),  # a whole pickled model, not a state dict
    ("torch", "load"),
    ("collections", "defaultdict"),
])
def test_only_state_dict_globals_resolve(tmp_path, module, name):
    path = _torch_zip(tmp_path / "x.bin", b"\x80\x02" + _call(_global(module, name)) + b".")
    with pytest.raises(UnsafeCheckpointError, match=rf"{path}.*`{module}\.{name}`"):
        open_checkpoint(path, allow_pickle=True)


def test_truncated_file_names_the_file(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(BERT / "config.json", folder / "config.json")
    data = (BERT / "pytorch_model.bin").read_bytes()
    (folder / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(BackboneError, match="truncated or damaged zip") as error:
        load_encoder(folder, allow_pickle=True)
    assert str(folder / "pytorch_model.bin") in str(error.value)
    assert "Re-download" in str(error.value)


def test_legacy_format_is_refused_with_the_conversion():
    path = TENSORS / "legacy.bin"
    with pytest.raises(BackboneError, match="pre-1.6 torch.save format") as error:
        open_checkpoint(path, allow_pickle=True)
    assert str(path) in str(error.value)
    assert "save_pretrained(dir, safe_serialization=True)" in str(error.value)


@pytest.mark.parametrize("data_pkl, storage, expected", [
    # A view reaching past its storage: never handed to as_strided.
    (_state_dict(w=_tensor(0, (4,), (2,), 6)), np.zeros(6, "<f4").tobytes(), "reaches element 7"),
    # A storage shorter in the zip than the pickle says.
    (_state_dict(w=_tensor(0, (4,), (1,), 100)), np.zeros(4, "<f4").tobytes(), "shorter than 100"),
    (b"\x80\x02" + _text("not a dict") + b".", b"", "does not hold a state dict"),
    (b"\x80\x02}(", b"", "UnpicklingError|EOFError"),
])
def test_malformed_state_dicts_name_the_file(tmp_path, data_pkl, storage, expected):
    path = _torch_zip(tmp_path / "bad.bin", data_pkl, storage)
    with pytest.raises(BackboneError, match=expected) as error:
        open_checkpoint(path, allow_pickle=True)
    assert str(path) in str(error.value) and not isinstance(error.value, UnsafeCheckpointError)
