"""What each ingredient is worth, on the validation splits only (FER-2013 PublicTest / FER+ val).

Two parts:
- training runs (one row per run, recorded in docs/benchmarks/finetune_runs.json when they ran):
  pretrained vs from scratch, frozen vs fine-tuned, input size, seeds, for the FaceRes MobileNet;
  their validation accuracy was measured on the training machine with flip TTA, on the same split.
- measured now on the shipped files: test-time flip on/off for every single model, and every shipped
  ensemble against its members.
"""

from __future__ import annotations

import json

from .common import REPO

RUNS = REPO / "docs" / "benchmarks" / "finetune_runs.json"


def run(args) -> dict:
    from model_core.card import read_card
    from training.data import load_splits
    from training.evaluate import card_probs
    from training.metrics import classification_metrics

    models_dir = REPO / "models"
    cards = {c["name"]: c for c in (read_card(p) for p in sorted(models_dir.glob("*.json")))}
    splits = {s: load_splits(scheme=s)[0]["PublicTest"] for s in sorted({c["label_scheme"] for c in cards.values()})}
    rows = []
    for card in cards.values():
        if card.get("kind") == "ensemble":
            continue
        val = splits[card["label_scheme"]]
        for tta in ([], ["flip"]):
            p = card_probs(dict(card, tta=tta), val.images, models_dir)
            m = classification_metrics(val.labels, p.argmax(1), card["classes"])
            rows.append(
                {
                    "what": f"{card['name']}: TTA {'flip' if tta else 'none'}",
                    "split": f"{card['label_scheme']} PublicTest",
                    "accuracy": m["accuracy"],
                    "macro_f1": m["macro_f1"],
                }
            )
    cache: dict = {}
    for card in cards.values():
        if card.get("kind") != "ensemble":
            continue
        val = splits[card["label_scheme"]]
        p = card_probs(card, val.images, models_dir, cache)
        m = classification_metrics(val.labels, p.argmax(1), card["classes"])
        members = " + ".join(f"{x['name']} ({x['weight']:g})" for x in card["members"])
        rows.append(
            {
                "what": f"ensemble {card['name']}: {members}",
                "split": f"{card['label_scheme']} PublicTest",
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
            }
        )
    return {"rows": rows}


def _run_label(name: str, r: dict) -> str:
    start = {"faceres": "FaceRes", "faceres-deep": "FaceRes-deep"}.get(r["init"], r["init"])
    how = (
        "from scratch (BatchNorm)"
        if r["init"] == "scratch"
        else f"{start}, frozen backbone (head only)"
        if r["freeze"]
        else f"{start}, fine-tuned"
    )
    if r.get("freeze_groups"):
        how += f" (conv1-block {r['freeze_groups'] - 1} fixed)"
    target = "vote distribution" if r["targets"] == "soft" else "hard labels"
    return f"`{name}`: {r['input_size']} px, {how}, {target}, seed {r['seed']}"


def markdown(res: dict) -> str:
    lines = []
    # the runs are a record kept beside the results (a run adds itself when it is made), not measured here:
    # the report shows the record as it is now
    runs = json.loads(RUNS.read_text()) if RUNS.exists() else {}
    if runs:
        lines += [
            "Training runs (MobileNet-v1; best epoch on the validation split, flip TTA, measured on the "
            "training machine; the GPU runs had wall-clock budgets on one shared H200: 470 s with eight "
            "runs at once, or 270 s with four, so epochs differ by input size and run; the CPU run had "
            "the 2-core development machine to itself, nearly):",
            "",
            "| run | split | accuracy | epochs (best / run) | train time |",
            "|---|---|---|---|---|",
        ]
        order = sorted(
            runs.items(),
            key=lambda kv: (kv[1]["scheme"], kv[1]["input_size"], kv[1]["init"], kv[1]["freeze"], kv[1]["seed"]),
        )
        for name, r in order:
            lines.append(
                f"| {_run_label(name, r)} | {r['val_split']} | {r['best_val_accuracy_device'] * 100:.2f}% | "
                f"{r['best_epoch']} / {r['epochs_run']} | {r['train_wall_s']:.0f} s on {r['machine'].split(',')[0]} |"
            )
        lines.append("")
    lines += [
        "Measured on the shipped files:",
        "",
        "| configuration | split | accuracy | macro-F1 |",
        "|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['what']} | {r['split']} | {r['accuracy'] * 100:.2f}% | {r['macro_f1']:.3f} |")
    lines.append("")
    lines.append(
        "Ensemble members and weights were chosen on PublicTest itself, so ensemble rows are optimistic "
        "here; the honest number is the PrivateTest / FER+ test accuracy in the accuracy table."
    )
    return "\n".join(lines)
