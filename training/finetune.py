"""The one trainer: any network of training/nets.py on FER-2013 / FER+, in PyTorch (CPU or GPU).

The shipped MobileNets fine-tune the pretrained FaceRes backbone (the default, `--arch mobilenet_v1`);
the compact CNNs train from scratch (`--arch compact_cnn --init scratch`, then a second stage
`--init-from` the first run's model.pt). PyTorch because on this project's 2-core CPU a network trains
2-4x faster than in Keras (bfloat16 autocast where the CPU has it natively), the lent GPU machines have
PyTorch, and one framework is one of everything (issue 17: Keras and TensorFlow left). Every result is
served through ONNX Runtime (`ship`). Balancing (`--balance oversample|smote|adasyn|class_weights`,
training/balance.py) and cleaning (`--clean`, the default; training/clean.py) are options of this trainer.

The MobileNet recipe (measured choices in docs/benchmarks/NOTES.md):
- input: the 48x48 grey FER face, upsampled to `input_size` (96-224) and replicated into three
  channels, 0-255 minus the caffe BGR means (the scaling FaceRes was trained with). The card's input
  spec says so (`scale: caffe_bgr`, `source_size: 48`) and `model_core.preprocess` applies it when
  serving, so a detected face goes through the same 48 px bottleneck the model learnt from.
- augmentation on the device, per batch: mirror, rotation, zoom, shift, brightness/contrast, random
  erasing; the affine warp and the upsampling are one `grid_sample`.
- layer-wise learning rates (each block from the input gets `layer_decay` times the next one's),
  linear warm-up, cosine decay, AdamW; label smoothing on hard labels; FER+ trains on the vote
  distribution (`--targets soft`).
- the pretrained batch norms stay folded (`norm="affine"`, see training/mobilenet.py).

Resumable: a checkpoint after every epoch in the run folder; rerunning the same command continues.
With `--time-budget S` the number of epochs is chosen once, at the start, from a timed probe, so a
run fits a lease on a lent machine (or a night on the CPU). Selection: best PublicTest (validation)
epoch; PrivateTest is only ever evaluated by `ship`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import data as fer
from .balance import balance
from .clean import clean as clean_split

REPO = Path(__file__).resolve().parent.parent


@dataclass
class FinetuneConfig:
    name: str
    arch: str = "mobilenet_v1"  # a network in training/nets.py: mobilenet_v1 | compact_cnn
    scheme: str = "fer2013"  # fer2013 (7 classes) | ferplus (8 classes)
    targets: str = "hard"  # hard | soft (FER+ vote distribution)
    balance: str = "none"  # none | oversample | smote | adasyn | class_weights (training/balance.py)
    input_size: int = 160
    init: str = "faceres"  # pretrained checkpoint: faceres | faceres-deep; or scratch
    init_from: str = ""  # or start from a trained net: a shipped MobileNet .onnx (head included,
    # same classes), a run's weights.npz, or a run's model.pt (any net;
    # layers whose shapes match, so another scheme gets a new head)
    freeze: bool = False  # train the head only (frozen backbone)
    freeze_groups: int = 0  # keep conv1 and blocks 1..K-1 fixed (K groups): on a CPU their
    # backward pass is skipped (96 px: 71 -> 102 images/s here)
    epochs: int = 30
    time_budget: float = 0.0  # seconds; >0: fewer epochs if the probe says they won't fit
    batch_size: int = 128
    lr: float = 1e-3  # peak rate of the head and the last block
    layer_decay: float = 0.85
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    dropout: float = 0.3
    rotate: float = 15.0  # degrees
    zoom: float = 0.15
    shift: float = 0.10
    erase_prob: float = 0.5
    tta: list = field(default_factory=lambda: ["flip"])
    seed: int = 1
    clean: bool = True
    data: str = ""  # folder with fer2013/ and ferplus/ (default: ../shared/data)
    pack: str = ""  # or a pack made by `python -m training pack`
    faceres: str = ""  # the npz itself (default: the init's file in weights_dir)
    weights_dir: str = ""  # folder of converted checkpoints (default cache/faceres)
    limit: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bfloat16 autocast where it is native (GPU, AVX512-BF16/AMX CPU)
    threads: int = 0  # CPU threads (0: torch's default)
    run_dir: str = ""  # default runs/<name>
    title: str = ""


# Fields that must match to resume a checkpoint (others, like the device, may change).
RESUME_KEYS = (
    "arch",
    "scheme",
    "targets",
    "balance",
    "input_size",
    "init",
    "init_from",
    "freeze",
    "freeze_groups",
    "batch_size",
    "lr",
    "layer_decay",
    "weight_decay",
    "label_smoothing",
    "dropout",
    "seed",
    "clean",
    "limit",
)


# ---------------------------------------------------------------- data

MOSAIC_COLUMNS = 128


def _mosaic(images: np.ndarray) -> np.ndarray:
    rows = -(-len(images) // MOSAIC_COLUMNS)
    h, w = images.shape[1:]
    m = np.zeros((rows * h, MOSAIC_COLUMNS * w), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, MOSAIC_COLUMNS)
        m[r * h : (r + 1) * h, c * w : (c + 1) * w] = img
    return m


def _unmosaic(m: np.ndarray, n: int, size: int = fer.IMAGE_SIZE) -> np.ndarray:
    out = np.empty((n, size, size), np.uint8)
    for i in range(n):
        r, c = divmod(i, MOSAIC_COLUMNS)
        out[i] = m[r * size : (r + 1) * size, c * size : (c + 1) * size]
    return out


def write_pack(out: Path, data_dir: Path | None = None, train_quality: int = 0) -> Path:
    """Training + PublicTest with the FER+ votes as a small folder, to carry to a lent GPU machine:
    each split one WebP mosaic (lossless, ~53 MB for both) and the labels in `meta.npz`.
    `train_quality` 1-100 stores Training as lossy WebP instead (95: 29 MB, mean error 1.1 grey levels),
    for a transfer limit. PrivateTest never travels. Never commit a pack."""
    import cv2

    data_dir = Path(data_dir) if data_dir else fer.default_data_dir()
    images = fer.read_fer2013_csv(fer.fer2013_csv(data_dir), cache_dir=fer.CACHE_DIR)
    votes = fer.read_ferplus_votes(data_dir / fer.FERPLUS_CSV)
    idx = np.nonzero(np.isin(images.usage, ["Training", "PublicTest"]))[0]
    if not np.array_equal(idx, np.arange(len(idx))):
        raise fer.DataError("a pack holds a prefix of fer2013.csv (Training, then PublicTest)")
    out.mkdir(parents=True, exist_ok=True)
    errors = {}
    for split in ("Training", "PublicTest"):
        sel = images.images[idx][images.usage[idx] == split]
        q = train_quality if split == "Training" and train_quality else 101  # 101: lossless
        ok, enc = cv2.imencode(".webp", _mosaic(sel), [cv2.IMWRITE_WEBP_QUALITY, q])
        if not ok:
            raise RuntimeError("WebP encoding failed")
        (out / f"{split}.webp").write_bytes(enc.tobytes())
        back = _unmosaic(cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE), len(sel))
        errors[split] = float(np.abs(back.astype(np.int16) - sel).mean())
    np.savez_compressed(
        out / "meta.npz",
        labels=images.labels[idx],
        usage=images.usage[idx].astype("U11"),
        rows=images.rows[idx],
        votes=votes.votes[idx].astype(np.uint8),
        named=votes.names[idx] != "",
        vote_usage=votes.usage[idx].astype("U11"),
        mean_abs_error=np.array([errors["Training"], errors["PublicTest"]]),
    )
    return out


def read_pack(path: Path):
    import cv2

    path = Path(path)
    z = np.load(path / "meta.npz")
    usage = z["usage"].astype(str)
    parts = []
    for split in ("Training", "PublicTest"):
        m = cv2.imread(str(path / f"{split}.webp"), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise fer.DataError(f"{path / (split + '.webp')}: missing or unreadable")
        parts.append(_unmosaic(m, int((usage == split).sum())))
    images = fer.FerImages(
        np.concatenate(parts),
        z["labels"].astype(np.int64),
        usage,
        z["rows"].astype(np.int64),
        f"{path} (pack; mean abs error vs CSV "
        f"{float(z['mean_abs_error'][0]):.2f} Training, {float(z['mean_abs_error'][1]):.2f} PublicTest)",
    )
    names = np.where(z["named"], "x", "")
    votes = fer.FerPlusVotes(z["vote_usage"].astype(str), names, z["votes"].astype(np.float32))
    return images, votes


def load_data(cfg: FinetuneConfig):
    """(train split, val split, source, cleaning report): the cleaned training split; validation is
    PublicTest. From a pack, or from the data folder through `data.load_splits`."""
    if cfg.pack:
        images, votes = read_pack(Path(cfg.pack))
        splits, source = fer.build_splits(images, cfg.scheme, votes), images.source
    else:
        splits, votes, source = fer.load_splits(cfg.data or None, cfg.scheme)
    train, val = splits["Training"], splits["PublicTest"]
    report = None
    if cfg.clean:
        train, report = clean_split(train, votes)
    if cfg.limit:  # after cleaning: `limit` faces are trained on
        rng = np.random.default_rng(cfg.seed)
        train, val = (fer.subset(s, cfg.limit, rng) for s in (train, val))
    return train, val, source, report


# ---------------------------------------------------------------- device-side batches


def upsample(x01, size):
    """(B, 1, 48, 48) in [0, 1] -> (B, 1, size, size), bilinear with half-pixel centres (as
    cv2.INTER_LINEAR, which serving uses)."""
    import torch.nn.functional as F

    return F.interpolate(x01, size=(size, size), mode="bilinear", align_corners=False)


def augment(x01, size, cfg: FinetuneConfig, gen):
    """Random mirror/rotate/zoom/shift (one grid_sample that also upsamples), brightness/contrast,
    random erasing. `x01`: (B, 1, h, w) float in [0, 1] on the device."""
    import torch
    import torch.nn.functional as F

    b, dev = x01.shape[0], x01.device

    def u(lo, hi):
        return torch.rand(b, generator=gen, device=dev) * (hi - lo) + lo

    ang = u(-cfg.rotate, cfg.rotate) * math.pi / 180.0
    zoom = torch.exp(u(math.log(1.0 - cfg.zoom), math.log(1.0 + cfg.zoom)))
    flip = torch.where(torch.rand(b, generator=gen, device=dev) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(ang) / zoom, torch.sin(ang) / zoom
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, u(-2 * cfg.shift, 2 * cfg.shift)], 1),
            torch.stack([sin * flip, cos, u(-2 * cfg.shift, 2 * cfg.shift)], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, (b, 1, size, size), align_corners=False)
    x = F.grid_sample(x01, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * u(0.7, 1.3).view(b, 1, 1, 1) + mean + u(-0.15, 0.15).view(b, 1, 1, 1)).clamp(0, 1)
    if cfg.erase_prob > 0:
        area = u(0.02, 0.2)
        aspect = torch.exp(u(math.log(0.3), math.log(3.3)))
        h = (torch.sqrt(area * aspect) * size).clamp(1, size)
        w = (torch.sqrt(area / aspect) * size).clamp(1, size)
        y0, x0 = u(0, 1) * (size - h), u(0, 1) * (size - w)
        ys = torch.arange(size, device=dev).view(1, size, 1)
        xs = torch.arange(size, device=dev).view(1, 1, size)
        box = (
            (ys >= y0.view(b, 1, 1))
            & (ys < (y0 + h).view(b, 1, 1))
            & (xs >= x0.view(b, 1, 1))
            & (xs < (x0 + w).view(b, 1, 1))
        )
        on = (torch.rand(b, generator=gen, device=dev) < cfg.erase_prob).view(b, 1, 1)
        x = torch.where((box & on).unsqueeze(1), u(0, 1).view(b, 1, 1, 1), x)
    return x


# ---------------------------------------------------------------- training


def _device(cfg):
    import torch

    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def build_model(cfg: FinetuneConfig, num_classes: int):
    """The configured network (training/nets.py), initialised from `init` or `init_from`."""
    from .faceres import CHECKPOINTS, default_npz
    from .nets import get, load_state, transfer_state

    net = get(cfg.arch)
    if net.pretrained and cfg.init != "scratch" and cfg.init not in CHECKPOINTS:
        raise ValueError(f"--init must be one of {sorted(CHECKPOINTS)} or scratch, got {cfg.init!r}")
    if not net.pretrained and cfg.init != "scratch":
        raise ValueError(f"{cfg.arch} has no pretrained checkpoint: use --init scratch (and --init-from a run)")
    pretrained = net.pretrained and cfg.init != "scratch"
    if cfg.init_from and Path(cfg.init_from).suffix == ".pt":
        model = net.build(num_classes, "batch", cfg.dropout)
        copied = transfer_state(model, load_state(cfg.init_from))
        if not copied:
            raise ValueError(f"{cfg.init_from}: no layer matches a {cfg.arch}")
        return model
    model = net.build(num_classes, "affine" if pretrained or cfg.init_from else "batch", cfg.dropout)
    if cfg.init_from:
        arrays = load_trained_arrays(cfg.init_from)
        if arrays["head.bias"].shape[0] != num_classes:
            raise ValueError(f"{cfg.init_from}: {arrays['head.bias'].shape[0]} classes, the scheme has {num_classes}")
        model.load_arrays(arrays)
    elif pretrained:
        path = Path(cfg.faceres) if cfg.faceres else default_npz(cfg.init, cfg.weights_dir or None)
        if not path.exists():
            raise FileNotFoundError(f"{path}: FaceRes weights not found; run `python -m training faceres` first")
        model.load_arrays(dict(np.load(path)))
    return model


def load_trained_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Folded float32 arrays of a trained MobileNet: a shipped `.onnx` or a run's `weights.npz`."""
    from .mobilenet import arrays_from_onnx

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model to start from")
    if path.suffix == ".onnx":
        return arrays_from_onnx(path)
    return {k: np.asarray(v, np.float32) for k, v in np.load(path).items()}


def native_bf16(device, cpuinfo: str | None = None) -> bool:
    """Whether bfloat16 autocast pays on `device`: always on a GPU; on a CPU only with AVX512-BF16 or
    AMX. Without them PyTorch emulates bfloat16 and a MobileNet step is ~10x slower (measured: 5 vs 55
    images/s at 96 px on a 2-core AVX2 EPYC)."""
    if device.type != "cpu":
        return True
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def param_groups(model, cfg: FinetuneConfig):
    """Layer-wise rates: the head and block 13 get `lr`, each earlier group `layer_decay` times less.
    No weight decay on scales and biases."""
    groups = model.groups()
    n = len(groups)
    out = []
    for i, params in enumerate(groups):
        scale = cfg.layer_decay ** max(0, n - 2 - i)  # head (n-1) and last block (n-2) at full rate
        if (cfg.freeze and i < n - 1) or i < cfg.freeze_groups:
            for p in params:
                p.requires_grad_(False)
            continue
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        for ps, wd in ((decay, cfg.weight_decay), (no_decay, 0.0)):
            if ps:
                out.append({"params": ps, "lr": cfg.lr * scale, "base_lr": cfg.lr * scale, "weight_decay": wd})
    return out


def lr_factor(progress: float, step: int, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 as `progress` goes 0 -> 1."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))


def evaluate_device(model, images_u8, size, tta, device, amp, batch=512, spec=None):
    """Class probabilities (flip TTA as configured) for uint8 (N, 48, 48) faces, on the device; `spec`
    is the net's input spec (default: MobileNet's at `size`)."""
    import torch

    from .nets import NETS, to_input

    spec = spec or NETS["mobilenet_v1"].input_spec(size)

    model.eval()
    out = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for i in range(0, len(images_u8), batch):
            x = torch.as_tensor(images_u8[i : i + batch], device=device).float().div_(255.0).unsqueeze(1)
            x = to_input(upsample(x, size), spec).contiguous(memory_format=torch.channels_last)
            p = torch.softmax(model(x).float(), dim=1)
            if "flip" in tta:
                p = (p + torch.softmax(model(torch.flip(x, dims=[3])).float(), dim=1)) / 2
            out.append(p.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1))


def make_train_step(model, opt, cfg: FinetuneConfig, spec, device, amp: bool, gen):
    """One optimisation step on a batch of uint8 faces: device-side augmentation, the net's input
    scaling, soft-target cross-entropy (per-face weights for class_weights, as Keras' sample_weight),
    and the learning rate set to each group's base rate x `factor`. update=False: no step (the probe)."""
    import torch

    from .nets import to_input

    def train_step(xb_u8, yb, factor=0.0, update=True, wb=None):
        x = xb_u8.float().div_(255.0).unsqueeze(1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            x = to_input(augment(x, cfg.input_size, cfg, gen), spec).contiguous(memory_format=torch.channels_last)
            logits = model(x).float()
        per_face = torch.sum(-yb * torch.log_softmax(logits, dim=1), dim=1)
        loss = per_face.mean() if wb is None else (per_face * wb).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if update:
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * factor
            opt.step()
        return loss

    return train_step


def resume(ckpt_path: Path, cfg: FinetuneConfig, model, opt, log=print) -> dict | None:
    """The run's state from its last checkpoint (model and optimiser restored), or None for a fresh
    run; a checkpoint made with other settings (RESUME_KEYS) is refused."""
    import torch

    if not ckpt_path.exists():
        return None
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    saved = state["config"]
    fresh = FinetuneConfig(name=cfg.name)
    diff = [k for k in RESUME_KEYS if saved.get(k, getattr(fresh, k)) != getattr(cfg, k)]
    if diff:
        raise ValueError(f"{ckpt_path} was made with other settings ({diff}); use another --run-dir or remove it")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    log(f"[{cfg.name}] resuming after epoch {state['epoch']} of {state['epochs']}")
    return state


def save_checkpoint(ckpt_path: Path, state: dict, model, opt, cfg: FinetuneConfig) -> None:
    """The state after an epoch, written atomically (a run killed mid-write keeps the previous one)."""
    import torch

    state.update(model=model.state_dict(), optimizer=opt.state_dict(), config=dataclasses.asdict(cfg))
    tmp = ckpt_path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, ckpt_path)


def probe_schedule(
    cfg: FinetuneConfig, train_step, x_train, y_train, steps_per_epoch: int, device, gen, elapsed_s: float
) -> tuple[int, dict, float]:
    """For a run with a time budget: time 15 steps (after 5 warm-up ones, no update) and plan the
    epochs that fit. Returns (epochs, the probe's record, the training budget in seconds)."""
    import torch

    idx = torch.randint(0, len(x_train), (cfg.batch_size,), device=device, generator=gen)
    for i in range(20):
        if i == 5:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.time()
        train_step(x_train[idx], y_train[idx], update=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    step_s = (time.time() - t0) / 15
    epoch_s = step_s * steps_per_epoch * 1.1 + 1.0  # + validation and bookkeeping
    budget = cfg.time_budget - elapsed_s - 10.0  # 10 s to finish and save
    # Generous on purpose: the schedule also runs on the clock (schedule_position), so a probe that was
    # too optimistic costs nothing, and one that was too gloomy would end the run early.
    epochs = max(1, min(cfg.epochs, math.ceil(1.3 * budget / epoch_s)))
    probe = {
        "step_s": round(step_s, 4),
        "images_per_s": round(cfg.batch_size / step_s, 1),
        "epoch_s_estimate": round(epoch_s, 1),
        "epochs_planned": epochs,
        "train_budget_s": round(budget, 1),
    }
    return epochs, probe, budget


def schedule_position(step: int, warmup: int, total_steps: int, budget: float | None, wall_s: float) -> float:
    """Where the cosine schedule is (0 -> 1): by steps, or by the clock for a budgeted run, whichever is
    further on, so a budgeted run always anneals fully inside its budget."""
    p = (step - warmup) / max(1, total_steps - warmup)
    if budget:
        p = max(p, wall_s / budget)
    return p


def finetune(cfg: FinetuneConfig, log=print) -> dict:
    import torch

    from .nets import get

    t_start = time.time()
    net = get(cfg.arch)
    spec = net.input_spec(cfg.input_size)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg)
    amp = bool(cfg.amp) and native_bf16(device)
    if cfg.amp and not amp:
        log(f"[{cfg.name}] bfloat16 autocast off: this CPU has no native bfloat16 (avx512_bf16 / amx_bf16)")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)
    classes = fer.SCHEMES[cfg.scheme]
    run_dir = Path(cfg.run_dir or REPO / "runs" / cfg.name)
    run_dir.mkdir(parents=True, exist_ok=True)

    train, val, source, clean_report = load_data(cfg)
    if cfg.targets == "soft" and train.soft is None:
        raise ValueError("soft targets need the FER+ scheme (--scheme ferplus)")
    images, labels, soft, cw = balance(
        train.images,
        train.labels,
        cfg.balance,
        train.soft if cfg.targets == "soft" else None,
        seed=cfg.seed,
        num_classes=len(classes),
    )
    if cfg.targets == "soft":
        targets = soft
    else:
        targets = np.eye(len(classes), dtype=np.float32)[labels]
        if cfg.label_smoothing:
            targets = targets * (1 - cfg.label_smoothing) + cfg.label_smoothing / len(classes)
    class_counts = dict(zip(classes, np.bincount(labels, minlength=len(classes)).tolist(), strict=True))
    if cfg.balance != "none":
        log(
            f"[{cfg.name}] balancing={cfg.balance}: {class_counts}"
            + ("" if cw is None else f", class weights {[round(cw[i], 2) for i in range(len(classes))]}")
        )
    x_train = torch.as_tensor(images, device=device)
    y_train = torch.as_tensor(np.asarray(targets, np.float32), device=device)
    w_train = None if cw is None else torch.as_tensor(np.array([cw[int(c)] for c in labels], np.float32), device=device)
    n = len(x_train)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the ragged last batch
    log(f"[{cfg.name}] {n} training faces, {len(val)} validation; device {device}, amp={amp}")

    model = build_model(cfg, len(classes)).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(
        param_groups(model, cfg), lr=cfg.lr, betas=(0.9, 0.999), **({"fused": True} if device.type == "cuda" else {})
    )
    gen = torch.Generator(device=device)

    train_step = make_train_step(model, opt, cfg, spec, device, amp, gen)

    ckpt_path = run_dir / "checkpoint.pt"
    state = resume(ckpt_path, cfg, model, opt, log)
    if state is None:
        epochs, probe, budget = cfg.epochs, None, None
        if cfg.time_budget > 0:
            model.train()
            epochs, probe, budget = probe_schedule(
                cfg, train_step, x_train, y_train, steps_per_epoch, device, gen, time.time() - t_start
            )
            log(f"[{cfg.name}] probe: {probe}")
        state = {
            "epoch": 0,
            "epochs": epochs,
            "history": [],
            "best_acc": -1.0,
            "best_epoch": 0,
            "best_model": None,
            "probe": probe,
            "wall_s": 0.0,
            "budget": budget,
        }
    epochs = state["epochs"]
    total_steps = epochs * steps_per_epoch
    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    budget = state.get("budget")
    t_resume, wall_before = time.time(), state["wall_s"]

    def progress(step: int) -> float:
        return schedule_position(step, warmup, total_steps, budget, wall_before + time.time() - t_resume)

    out_of_time = False
    for epoch in range(state["epoch"] + 1, epochs + 1):
        t0 = time.time()
        model.train()
        gen.manual_seed(cfg.seed * 1000 + epoch)
        order = torch.randperm(n, device=device, generator=gen)
        loss_sum = torch.zeros((), device=device)
        done = 0
        for s_ in range(steps_per_epoch):
            step = (epoch - 1) * steps_per_epoch + s_
            p = progress(step)
            if p >= 1.0 and step >= warmup:
                out_of_time = True
                break
            idx = order[s_ * cfg.batch_size : (s_ + 1) * cfg.batch_size]
            loss_sum += train_step(
                x_train[idx], y_train[idx], lr_factor(p, step, warmup), wb=None if w_train is None else w_train[idx]
            ).detach()
            done += 1
        if done == 0:
            break
        probs = evaluate_device(model, val.images, cfg.input_size, cfg.tta, device, amp, spec=spec)
        acc = float((probs.argmax(1) == val.labels).mean())
        dt = time.time() - t0
        rec = {
            "epoch": epoch,
            "loss": round(float(loss_sum) / done, 5),
            "val_accuracy": round(acc, 5),
            "seconds": round(dt, 1),
            "images_per_s": round(done * cfg.batch_size / dt, 1),
        }
        if done < steps_per_epoch:
            rec["steps"] = done  # the clock ended the schedule inside this epoch
        state["history"].append(rec)
        state["wall_s"] += dt
        if acc > state["best_acc"]:
            state["best_acc"], state["best_epoch"] = acc, epoch
            state["best_model"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if out_of_time:
            state["epochs"] = epoch  # the schedule is complete: a rerun has nothing left to do
        state["epoch"] = epoch
        save_checkpoint(ckpt_path, state, model, opt, cfg)
        log(
            f"[{cfg.name}] epoch {epoch}/{epochs}: loss {rec['loss']:.4f}, PublicTest {acc:.4f} "
            f"({dt:.0f} s, {rec['images_per_s']:.0f} img/s)"
        )
        if out_of_time:
            break

    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    model.eval()
    arrays = model.folded_arrays()
    weights = run_dir / "weights.npz"
    np.savez(weights, **{k: v.astype(net.weights_dtype) for k, v in arrays.items()})
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, run_dir / "model.pt")
    summary = {
        "name": cfg.name,
        "config": dataclasses.asdict(cfg),
        "source": source,
        "classes": classes,
        "train_faces": n,
        "train_class_counts": class_counts,
        "clean_report": None
        if clean_report is None
        else {k: v for k, v in clean_report.items() if k != "removed_rows"},
        "epochs": state["epochs"],
        "epochs_run": state["epoch"],
        "ended_by_clock": out_of_time,
        "best_epoch": state["best_epoch"],
        "best_val_accuracy": state["best_acc"],
        "history": state["history"],
        "probe": state["probe"],
        "train_wall_s": round(state["wall_s"], 1),
        "machine": machine_name(device),
        "params": int(sum(p.numel() for p in model.parameters())),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"[{cfg.name}] best PublicTest {state['best_acc']:.4f} at epoch {state['best_epoch']}; weights {weights}")
    return summary


def machine_name(device) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, PyTorch {torch.__version__}"
    return f"{platform.machine()} CPU ({os.cpu_count()} cores), PyTorch {torch.__version__}"


# ---------------------------------------------------------------- shipping


def ship(
    run_dir: str | Path,
    out_dir: str | Path = "models",
    name: str = "",
    title: str = "",
    data: str = "",
    splits=("PublicTest", "PrivateTest"),
    verbose: bool = True,
) -> dict:
    """A finished run -> `<out>/<name>.onnx` + card, measured through the serving path (ONNX Runtime,
    `model_core.preprocess`) on the named splits. PrivateTest is evaluated here and only here."""
    from model_core.card import write_card

    from .cards import single_card
    from .evaluate import measure
    from .faceres import ATTRIBUTION, CHECKPOINTS
    from .nets import get

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = dict(summary["config"])
    cfg.setdefault("arch", "mobilenet_v1")  # runs from before the registry
    net = get(cfg["arch"])
    name = name or summary["name"]
    arrays = {k: v.astype(np.float32) for k, v in np.load(run_dir / "weights.npz").items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    net.write_onnx(arrays, cfg["input_size"], onnx_path)
    scheme = cfg["scheme"]
    pretrained = net.pretrained and cfg["init"] in CHECKPOINTS
    classes_txt = "FER+ 8" if scheme == "ferplus" else "FER-2013 7"
    if net.pretrained:
        default_title = (
            f"MobileNet-v1 {'pretrained (' + cfg['init'] + ')' if pretrained else 'from scratch'}, "
            f"{cfg['input_size']} px, {classes_txt} classes"
        )
    else:
        default_title = f"{net.title}, {classes_txt} classes"
    stages = lineage(run_dir)
    card = single_card(
        name,
        title or cfg.get("title") or default_title,
        onnx_path.name,
        summary["classes"],
        scheme,
        net.input_spec(cfg["input_size"]),
        cfg["tta"],
        recipe={
            "arch": f"mobilenet_v1_{cfg['init'].replace('-', '_')}" if pretrained else cfg["arch"],
            "engine": "PyTorch (training/finetune.py)",
            "command": " && ".join(s["command"] for s in stages),
            "balance": cfg.get("balance", "none"),
            **{
                k: cfg[k]
                for k in (
                    "scheme",
                    "targets",
                    "input_size",
                    "init",
                    "freeze",
                    "batch_size",
                    "lr",
                    "layer_decay",
                    "warmup_epochs",
                    "weight_decay",
                    "label_smoothing",
                    "dropout",
                    "rotate",
                    "zoom",
                    "shift",
                    "erase_prob",
                    "seed",
                    "clean",
                    "time_budget",
                )
            },
            "freeze_groups": cfg.get("freeze_groups", 0),
            "epochs": summary["epochs"],
            "best_epoch": summary["best_epoch"],
            "selected_on": "PublicTest accuracy (best epoch)",
            "params": summary["params"],
            "train_faces": summary["train_faces"],
            "clean_report": summary["clean_report"],
            "probe": summary["probe"],
            "wall_time_s": summary["train_wall_s"],
            "machine": summary["machine"],
            "weights": "float16 (as trained; served in float32)" if net.weights_dtype == "float16" else "float32",
        },
        attribution=(
            ATTRIBUTION + (f" Checkpoint: {cfg['init']}." if cfg["init"] != "faceres" else "") if pretrained else None
        ),
        history={k: [h[k] for h in summary["history"]] for k in ("loss", "val_accuracy")},
    )
    card["metrics"] = measure(card, splits, out_dir, data or None, verbose=verbose)
    if len(stages) > 1:
        card["recipe"]["stages"] = stages
    write_card(out_dir / f"{name}.json", card)
    return card


def lineage(run_dir: Path) -> list[dict]:
    """The commands that made a run, first stage first: a run started `--init-from` another run's
    `model.pt` or `weights.npz` lists that run's stages before its own."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = summary["config"]
    stage = {
        "name": summary["name"],
        "command": finetune_command(cfg),
        "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"],
        "best_val_accuracy": round(summary["best_val_accuracy"], 4),
        "train_wall_s": summary["train_wall_s"],
    }
    parent = Path(cfg.get("init_from") or "").parent
    if cfg.get("init_from") and (parent / "summary.json").exists() and parent.resolve() != run_dir.resolve():
        earlier = lineage(parent)
        for s in earlier:  # an earlier stage is a starting point, not a model for models/
            if not s["command"].endswith(" --no-ship"):
                s["command"] += " --no-ship"
        return earlier + [stage]
    return [stage]


def finetune_command(cfg: dict) -> str:
    d = FinetuneConfig(name="")
    parts = [f"python -m training finetune --name {cfg['name']}"]
    for k, v in cfg.items():
        if k in (
            "name",
            "pack",
            "data",
            "run_dir",
            "faceres",
            "weights_dir",
            "device",
            "threads",
            "title",
        ) or v == getattr(d, k, v):
            continue
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            parts.append(flag if v else "--no-" + k.replace("_", "-"))
        elif isinstance(v, list):
            parts.append(f"{flag} {','.join(v) or 'none'}")
        else:
            parts.append(f"{flag} {v}")
    return " ".join(parts)
