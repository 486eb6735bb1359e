"""Train one model end to end: data -> cleaning -> balancing -> network -> fit -> evaluate -> export.

Resumable: Keras' BackupAndRestore keeps the last finished epoch under the run folder, so rerunning
the same command after an interruption continues where it stopped. Model selection uses the
validation split (PublicTest) only; the test split (PrivateTest) is evaluated once, at the end.
"""
from __future__ import annotations

import dataclasses
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model_core.card import DATASETS, metrics_key, write_card
from model_core.predictor import predict_batches
from model_core.preprocess import preprocess_faces

from . import data as fer
from .augment import augment_batch
from .balance import balance
from .clean import clean as clean_split
from .metrics import classification_metrics, format_report, plot_confusion, plot_history

REPO = Path(__file__).resolve().parent.parent


@dataclass
class TrainConfig:
    name: str
    arch: str = "compact_cnn"
    scheme: str = "fer2013"            # fer2013 (7 classes) | ferplus (8 classes)
    targets: str = "hard"              # hard labels | soft (FER+ vote distribution)
    balance: str = "none"              # none | oversample | smote | adasyn | class_weights
    clean: bool = True
    augment: bool = True
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    tta: list = field(default_factory=lambda: ["flip"])
    seed: int = 42
    data: str = ""                     # folder with fer2013/ and ferplus/ (default: ../shared/data)
    image_folder: str = ""             # alternatively <split>/<label>/*.png
    limit: int = 0                     # use only this many images per split (smoke tests)
    init_from: str = ""                # a .keras model whose matching layers start this one
    input_size: int = 0                # override the architecture's input size
    out_dir: str = "models"
    run_dir: str = ""                  # default runs/<name>
    title: str = ""


def _set_seed(seed: int) -> None:
    import keras
    keras.utils.set_random_seed(seed)


def load_splits(cfg: TrainConfig):
    """`(splits, votes, source)` for the configured data source and scheme (`data.load_splits`)."""
    return fer.load_splits(cfg.data or None, cfg.scheme, cfg.image_folder, cfg.limit, cfg.seed)


def make_batches(images, targets, batch_size, spec, augment, seed, sample_weight=None):
    import keras

    class FaceBatches(keras.utils.PyDataset):
        """Shuffled, augmented, preprocessed batches; augmentation in numpy (see augment.py)."""

        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(images))

        def __len__(self):
            return int(np.ceil(len(images) / batch_size))

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            faces = images[idx]
            if augment:
                faces = augment_batch(faces, self.rng)
            x = preprocess_faces(faces, spec)
            if sample_weight is None:
                return x, targets[idx]
            return x, targets[idx], sample_weight[idx]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(images))

    return FaceBatches()


def predict_probs(model, images, spec, tta, batch_size=256):
    """Probabilities for uint8 faces with the model's test-time procedure (same as the app)."""
    return predict_batches(model.predict_on_batch, images, spec, tta, model.output_shape[-1], batch_size)


def _transfer_weights(model, source_path) -> int:
    import keras
    src = keras.models.load_model(source_path, compile=False)
    by_name = {l.name: l for l in src.layers}
    copied = 0
    for layer in model.layers:
        other = by_name.get(layer.name)
        if other is None or not layer.weights:
            continue
        w = other.get_weights()
        if [a.shape for a in w] == [v.shape for v in layer.get_weights()]:
            layer.set_weights(w)
            copied += 1
    return copied


def train(cfg: TrainConfig, verbose: int = 1) -> dict:
    import keras

    from .architectures import build, default_input

    t0 = time.time()
    _set_seed(cfg.seed)
    classes = fer.SCHEMES[cfg.scheme]
    run_dir = Path(cfg.run_dir or REPO / "runs" / cfg.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(cfg.out_dir)
    spec = default_input(cfg.arch)
    if cfg.input_size:
        spec["size"] = cfg.input_size

    splits, votes, source = load_splits(cfg)
    train_split, val_split, test_split = (splits[s] for s in fer.SPLITS)
    clean_report = None
    if cfg.clean:
        train_split, clean_report = clean_split(train_split, votes)
        if verbose:
            print(f"cleaning: removed {clean_report['removed']} training images "
                  f"{clean_report['by_reason']}")
    if cfg.targets == "soft" and train_split.soft is None:
        raise ValueError("soft targets need the FER+ scheme (--scheme ferplus)")
    soft = train_split.soft if cfg.targets == "soft" else None
    x_train, y_train, soft, cw = balance(train_split.images, train_split.labels, cfg.balance, soft,
                                         seed=cfg.seed, num_classes=len(classes))
    counts = np.bincount(y_train, minlength=len(classes))
    if verbose:
        print(f"training on {len(x_train)} images after balancing={cfg.balance}: "
              f"{dict(zip(classes, counts.tolist()))}")
    targets = soft if soft is not None else np.eye(len(classes), dtype=np.float32)[y_train]
    sample_weight = None
    if cw is not None:
        sample_weight = np.array([cw[int(c)] for c in y_train], np.float32)

    model = build(cfg.arch, len(classes), spec)
    copied = _transfer_weights(model, cfg.init_from) if cfg.init_from else 0
    steps = int(np.ceil(len(x_train) / cfg.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=max(1, cfg.epochs * steps),
                                                      alpha=0.02)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                  metrics=["accuracy"])
    x_val = preprocess_faces(val_split.images, spec)
    y_val = np.eye(len(classes), dtype=np.float32)[val_split.labels]
    best_path = run_dir / "best.keras"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(best_path), monitor="val_accuracy", save_best_only=True),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    batches = make_batches(x_train, targets, cfg.batch_size, spec, cfg.augment, cfg.seed, sample_weight)
    model.fit(batches, epochs=cfg.epochs, validation_data=(x_val, y_val), callbacks=callbacks,
              verbose=verbose)
    history = _read_history(run_dir / "history.csv")
    best = keras.models.load_model(best_path, compile=False) if best_path.exists() else model

    metrics = {}
    for split_name, split in (("PublicTest", val_split), ("PrivateTest", test_split)):
        probs = predict_probs(best, split.images, spec, cfg.tta)
        m = classification_metrics(split.labels, probs.argmax(axis=1), classes)
        metrics[metrics_key(cfg.scheme, split_name)] = m
        if verbose:
            print(format_report(m, f"{split_name} ({cfg.scheme}, tta={cfg.tta})"))
        plot_confusion(m, run_dir / f"confusion_{split_name}.png",
                       f"{cfg.name} on {split_name}: acc {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}")
    if history:
        plot_history(history, run_dir / "curves.png", cfg.name)

    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"{cfg.name}.keras"
    best.save(model_path)
    recipe = dataclasses.asdict(cfg)
    recipe.update({
        "source": source, "params": int(best.count_params()),
        "clean_report": None if clean_report is None else
        {k: v for k, v in clean_report.items() if k != "removed_rows"},
        "train_class_counts": dict(zip(classes, counts.tolist())),
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": int(np.argmax(history["val_accuracy"])) + 1 if history.get("val_accuracy") else None,
        "selected_on": "PublicTest val_accuracy",
        "layers_initialised_from_init_from": copied,
        "wall_time_s": round(time.time() - t0, 1),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Keras {keras.__version__} "
                   f"({keras.backend.backend()})",
    })
    card = {
        "name": cfg.name,
        "title": cfg.title or f"{cfg.arch} on {cfg.scheme}",
        "kind": "single",
        "file": model_path.name,
        "classes": classes,
        "label_scheme": cfg.scheme,
        "dataset": DATASETS[cfg.scheme],
        "input": spec,
        "tta": list(cfg.tta),
        "recipe": recipe,
        "metrics": metrics,
        "history": history,
    }
    write_card(out_dir / f"{cfg.name}.json", card)
    (run_dir / "card.json").write_text(json.dumps(card, indent=2))
    return card


def _read_history(path: Path) -> dict:
    if not path.exists():
        return {}
    import csv
    with open(path) as f:
        rows = list(csv.DictReader(f))
    # After a resume CSVLogger appends; keep the last record of each epoch.
    by_epoch = {int(r["epoch"]): r for r in rows}
    hist: dict[str, list] = {}
    for e in sorted(by_epoch):
        for k, v in by_epoch[e].items():
            if k != "epoch":
                hist.setdefault(k, []).append(round(float(v), 5))
    return hist
