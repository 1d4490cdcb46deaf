"""Training on a tiny cache built from the bundled clips: steps, resume equality, DDP over 2 processes."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from edgeav_train.builder import CacheConfig, build_cache
from edgeav_train.train import TrainConfig, train

from conftest import ASSETS, REPO


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    out = tmp_path_factory.mktemp("cache")
    m = build_cache(
        ASSETS / "clips", out, CacheConfig(fps=5, width=64, height=48), layout="folder", workers=1, progress=False
    )
    assert len(m["clips"]) == 2 and not m["bad"]
    return out


def _cfg(cache, out, **kw):
    return TrainConfig(
        cache=str(cache),
        model="tiny",
        out=str(out),
        steps=4,
        clips_per_batch=2,
        windows_per_clip=4,
        log_every=1,
        ckpt_every=100,
        splits=("train", "val"),
        progress=False,
        **kw,
    )


def test_cache_resumes_and_lists_bad_files(tiny_cache, tmp_path):
    m = build_cache(
        ASSETS / "clips",
        tiny_cache,
        CacheConfig(fps=5, width=64, height=48),
        layout="folder",
        workers=1,
        progress=False,
    )
    assert m["_built"] == 0  # nothing redone
    folder = tmp_path / "footage"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(b"\x00" * 100)
    (folder / "clip.mp4").write_bytes((ASSETS / "clips" / "funnyboat-s12_20-35.mp4").read_bytes())
    m = build_cache(
        folder, tmp_path / "c", CacheConfig(fps=5, width=64, height=48), layout="folder", workers=1, progress=False
    )
    assert list(m["clips"]) == ["clip"] and "broken.mp4" in next(iter(m["bad"]))
    mel = np.load(tmp_path / "c" / "shards" / "clip.mel.npy")
    assert mel.shape == (1500, 64) and mel.dtype == np.float16


def test_two_steps_and_resume_equals_uninterrupted(tiny_cache, tmp_path):
    train(_cfg(tiny_cache, tmp_path / "a"))
    train(_cfg(tiny_cache, tmp_path / "b", stop_after=2))  # interrupted after 2 steps
    assert (tmp_path / "b" / "checkpoint.pt").exists() and not (tmp_path / "b" / "model.safetensors").exists()
    train(_cfg(tiny_cache, tmp_path / "b"))  # resumes at step 2
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert np.allclose(a[k].numpy(), b[k].numpy(), atol=1e-6), k
    lines = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and '"samples_per_s"' in lines[0]


def _torchrun_two(module: str, port: int, args: list[str]) -> None:
    """`torchrun --nproc_per_node 2 -m module args` (gloo, one thread each); fails the test with its stderr."""
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_port", str(port), "-m", module, *args]
    r = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert r.returncode == 0, r.stderr[-2000:]


def test_ddp_two_processes_gloo(tiny_cache, tmp_path):
    _torchrun_two(
        "edgeav_train.train",
        29517,
        [
            "--cache",
            str(tiny_cache),
            "--model",
            "tiny",
            "--out",
            str(tmp_path / "ddp"),
            "--steps",
            "2",
            "--clips_per_batch",
            "2",
            "--windows_per_clip",
            "2",
            "--log_every",
            "1",
            "--progress",
            "0",
            "--splits",
            '["train", "val"]',
        ],
    )
    assert (tmp_path / "ddp" / "model.safetensors").exists()
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("what", ["head", "visual"])
def test_bank_distillation_points_the_visual_head_into_the_library(tiny_cache, tmp_path, what):
    from edgeav.models import load_model
    from edgeav_train.bank_distill import BankDistillConfig, bank_distill

    stage1 = train(_cfg(tiny_cache, tmp_path / "s1"))
    before = load_model(str(stage1))
    out = bank_distill(
        BankDistillConfig(
            model=str(stage1),
            sounds=str(ASSETS / "sounds" / "funnyboat"),
            out=str(tmp_path / "s2"),
            cache=str(tiny_cache),
            steps=30,
            batch=16,
            lr=1e-2,
            log_every=10,
            splits=("train", "val"),
            train=what,
            tau_target=0.01,  # sharp targets: a tiny model's soft ones leave a KL below the log's 4 decimals
        )
    )
    after = load_model(str(out))
    # only the visual side moved (the head, or with train="visual" the whole encoder): the audio side and the
    # projector, hence the bank's embeddings, are unchanged
    sb, sa = before.state_dict(), after.state_dict()
    changed = {k for k in sb if not np.array_equal(sb[k].numpy(), sa[k].numpy())}
    assert set(sb) == set(sa) and changed
    assert all(k.startswith(f"visual.{'head.' if what == 'head' else ''}") for k in changed)
    assert any(k.startswith("visual.backbone.") for k in changed) == (what != "head")
    kls = [__import__("json").loads(x)["kl"] for x in (tmp_path / "s2" / "metrics.jsonl").read_text().splitlines()]
    assert kls[-1] < kls[0]  # it learns to predict the soundtrack's match in the library


def _stage2(stage1, cache, out, **kw):
    from edgeav_train.bank_distill import BankDistillConfig

    return BankDistillConfig(
        model=str(stage1),
        sounds=str(ASSETS / "sounds" / "funnyboat"),
        out=str(out),
        cache=str(cache),
        steps=6,
        batch=8,
        lr=1e-2,
        log_every=1,
        progress=False,
        splits=("train", "val"),
        train="visual",
        **kw,
    )


def test_stage2_resumes_bit_equal_after_an_interruption(tiny_cache, tmp_path):
    """Stage 2 runs on the common loop (edgeav_train.loop.fit): interrupted after 2 of 6 steps and resumed, its model is
    bit-equal to an uninterrupted run's, and it logs every step."""
    from edgeav_train.bank_distill import bank_distill

    stage1 = train(_cfg(tiny_cache, tmp_path / "s1"))
    a = bank_distill(_stage2(stage1, tiny_cache, tmp_path / "a"))
    stopped = bank_distill(_stage2(stage1, tiny_cache, tmp_path / "b", stop_after=2))
    assert stopped.name == "checkpoint.pt" and not (tmp_path / "b" / "model.safetensors").exists()
    b = bank_distill(_stage2(stage1, tiny_cache, tmp_path / "b"))
    sa, sb = load_file(a), load_file(b)
    assert sa.keys() == sb.keys() and all(np.array_equal(sa[k].numpy(), sb[k].numpy()) for k in sa)
    assert len((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()) == 6


def test_stage2_ddp_two_processes(tiny_cache, tmp_path):
    stage1 = train(_cfg(tiny_cache, tmp_path / "s1"))
    _torchrun_two(
        "edgeav_train.bank_distill",
        29519,
        [
            "--model",
            str(stage1),
            "--sounds",
            str(ASSETS / "sounds" / "funnyboat"),
            "--out",
            str(tmp_path / "ddp"),
            "--cache",
            str(tiny_cache),
            "--steps",
            "2",
            "--batch",
            "8",
            "--train",
            "visual",
            "--log_every",
            "1",
            "--progress",
            "0",
            "--splits",
            '["train", "val"]',
        ],
    )
    assert (tmp_path / "ddp" / "model.safetensors").exists()
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("w_nce", [0.0, 0.5])
def test_fingerprint_targets_teach_the_head_where_library_sounds_start(tiny_cache, tmp_path, w_nce):
    """Stage 2 from matched-filter detections: the training windows are those whose first frame shows a detected
    library sound starting (the bundled clips' own effects), each with that sound as its target; only the visual
    head moves, and it learns to predict them."""
    import json

    from edgeav.models import load_model
    from edgeav_train.bank_distill import BankDistillConfig, bank_distill

    stage1 = train(_cfg(tiny_cache, tmp_path / "s1"))
    out = bank_distill(
        BankDistillConfig(
            model=str(stage1),
            sounds=str(ASSETS / "sounds" / "funnyboat"),
            out=str(tmp_path / "s2"),
            cache=str(tiny_cache),
            steps=30,
            batch=16,
            lr=1e-2,
            log_every=10,
            splits=("train", "val"),
            targets="fingerprint",
            fingerprint_rate=8000,
            w_nce=w_nce,
        )
    )
    sb, sa = load_model(str(stage1)).state_dict(), load_model(str(out)).state_dict()
    changed = {k for k in sb if not np.array_equal(sb[k].numpy(), sa[k].numpy())}
    assert changed and all(k.startswith("visual.head.") for k in changed)
    detections = [json.loads(p.read_text())["detections"] for p in Path(tiny_cache).glob("fingerprints-*/*.json")]
    # both clips searched; most of the funnyboat clip's 22 logged shots found
    assert len(detections) == 2 and sum(map(len, detections)) >= 18
    logs = [json.loads(x) for x in (tmp_path / "s2" / "metrics.jsonl").read_text().splitlines()]
    assert logs[-1]["kl"] < logs[0]["kl"] and ("nce" in logs[0]) == bool(w_nce)
    from edgeav import EdgeavError

    with pytest.raises(EdgeavError, match="--targets"):  # refused before the library or footage is read
        bank_distill(
            BankDistillConfig(
                model=str(stage1), sounds=str(tmp_path / "none"), out=str(tmp_path / "x"), targets="labels"
            )
        )


def test_onset_strength_peaks_where_a_sound_starts_at_the_first_frame(tiny_cache):
    from edgeav_train.bank_distill import onset_strength
    from edgeav_train.data import WindowSampler

    s = WindowSampler(tiny_cache, ("train", "val"), (0.2, 0.4))
    c = 0
    mel = np.full((len(s.mels[c]), 64), -10.0, np.float32)
    onset = 300  # a sound starts at mel frame 300 (3 s), loud in every band
    mel[onset : onset + 20] = 0.0
    s.mels[c] = mel
    rows = np.array([(c, k) for k in range(s.n_starts[c])])
    st = onset_strength(s, rows)
    # strong exactly where a window's first frame (start + 0.2 s) shows the sound starting (± the 0.15-0.3 s lead)
    m0 = np.round(rows[:, 1] / s.fps * 100).astype(int)
    expect = (m0 + 15 <= onset) & (onset <= m0 + 30)
    assert expect[int(round(2.8 * s.fps))] and np.array_equal(st > 0, expect) and st.max() > 100


# ---------------------------------------------------------------- students: offline distillation
def _distill_cfg(cache, teacher, out, **kw):
    from edgeav_train.student import DistillConfig

    base = dict(
        steps=4,
        batch=8,
        library_batch=8,
        n_mixes=16,
        log_every=1,
        ckpt_every=100,
        progress=False,
        overrides={"embed_dim": 16},
    )
    return DistillConfig(
        teacher=str(teacher),
        student="student_small",
        sounds=str(ASSETS / "sounds" / "funnyboat"),
        cache=str(cache),
        out=str(out),
        **{**base, **kw},
    )


@pytest.fixture(scope="module")
def tiny_teacher(tiny_cache, tmp_path_factory):
    return train(_cfg(tiny_cache, tmp_path_factory.mktemp("teacher")))


def test_distill_steps_resume_and_teacher_outputs_cached_once(tiny_cache, tiny_teacher, tmp_path):
    import json

    from edgeav_train.student import distill

    a = distill(_distill_cfg(tiny_cache, tiny_teacher, tmp_path / "a"))
    targets = list(Path(tiny_cache).glob("teacher-targets-*.npz"))
    assert len(targets) == 1
    stamp = targets[0].stat().st_mtime_ns
    distill(_distill_cfg(tiny_cache, tiny_teacher, tmp_path / "b", stop_after=2))
    assert not (tmp_path / "b" / "model.safetensors").exists()
    b = distill(_distill_cfg(tiny_cache, tiny_teacher, tmp_path / "b"))
    assert targets[0].stat().st_mtime_ns == stamp  # the teacher ran once; later runs reuse its outputs
    sa, sb = load_file(a), load_file(b)
    for k in sa:
        assert np.allclose(sa[k].numpy(), sb[k].numpy(), atol=1e-6), k
    rec = json.loads((tmp_path / "a" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"align_v", "align_a", "relational", "bank", "nce", "loss", "samples_per_s"} <= rec.keys()
    meta = json.loads(Path(a).with_suffix(".json").read_text())
    assert meta["name"] == "student_small" and meta["card"]["teacher"] == str(tiny_teacher)
    # one bank serves teacher and student: the student's banks are indexed by the teacher it was distilled from
    from edgeav.backends.torch_backend import TorchBackend
    from edgeav.bank import bank_encoder

    notes = []
    assert bank_encoder(TorchBackend(str(a)), notes.append).model_id == TorchBackend(str(tiny_teacher)).model_id
    meta["card"]["teacher_audio_sha1"] = "0" * 40  # another teacher now lives there: the student uses its own
    Path(a).with_suffix(".json").write_text(json.dumps(meta))
    student = TorchBackend(str(a))
    assert bank_encoder(student, notes.append) is student and "not the one" in notes[-1]


def test_distill_aligns_the_student_with_the_teacher(tiny_cache, tiny_teacher, tmp_path):
    import json

    from edgeav_train.student import distill

    distill(_distill_cfg(tiny_cache, tiny_teacher, tmp_path / "s", steps=40, lr=1e-2, log_every=5))
    recs = [json.loads(x) for x in (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["align_v"] < 0.5 * recs[0]["align_v"] and recs[-1]["bank"] < recs[0]["bank"]


def test_distill_ddp_two_processes(tiny_cache, tiny_teacher, tmp_path):
    _torchrun_two(
        "edgeav_train.student",
        29518,
        [
            "--teacher",
            str(tiny_teacher),
            "--student",
            "student_small",
            "--sounds",
            str(ASSETS / "sounds" / "funnyboat"),
            "--cache",
            str(tiny_cache),
            "--out",
            str(tmp_path / "ddp"),
            "--steps",
            "2",
            "--batch",
            "8",
            "--library_batch",
            "8",
            "--n_mixes",
            "16",
            "--log_every",
            "1",
            "--progress",
            "0",
            "--overrides",
            '{"embed_dim": 16}',
        ],
    )
    assert (tmp_path / "ddp" / "model.safetensors").exists()


def test_balanced_draw_evens_out_target_sounds():
    """Stage 2's --balance: at 1 each target sound's windows together are drawn as often as another's; 0 = uniform."""
    import torch

    from edgeav_train.bank_distill import balanced_draw

    targets = torch.tensor([[1.0, 0.0]] * 9 + [[0.0, 1.0]])  # sound 0 starts in 9 windows, sound 1 in one
    p = balanced_draw(targets, 1.0)
    assert abs(p[:9].sum() - 0.5) < 1e-6 and abs(p[9] - 0.5) < 1e-6
    half = balanced_draw(targets, 0.5)
    assert abs(half[9] - 0.25) < 1e-6 and abs(half.sum() - 1) < 1e-9
    assert balanced_draw(targets, 0.0) is None
