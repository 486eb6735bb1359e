"""Accuracy of every shipped model card on its named splits, recomputed from the data.

The numbers must equal those the card carries (written when the model was trained/ensembled);
the benchmark recomputes them so the page states what the shipped files do, not what a log said.
"""
from __future__ import annotations

import time

import numpy as np

from .common import REPO


def run(args) -> dict:
    from model_core.card import metrics_key, read_card
    from training.evaluate import measure
    from training.data import load_splits

    models_dir = REPO / "models"
    rows, split_cache, prob_cache = [], {}, {}
    for path in sorted(models_dir.glob("*.json")):
        card = read_card(path)
        scheme = card["label_scheme"]
        if scheme not in split_cache:
            split_cache[scheme], _, _ = load_splits(scheme=scheme)
        for split in ("PublicTest", "PrivateTest"):
            t = time.time()
            caches = {split: prob_cache.setdefault((scheme, split), {})}
            key = metrics_key(scheme, split)
            m = measure(card, (split,), models_dir, loaded=split_cache[scheme], caches=caches)[key]
            stored = card.get("metrics", {}).get(key, {}).get("accuracy")
            rows.append({"model": card["name"], "kind": card.get("kind", "single"), "split": key,
                         "accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4),
                         "recall": {c: round(v["recall"], 3) for c, v in m["per_class"].items()},
                         "matches_card": stored is not None and abs(stored - m["accuracy"]) < 1e-6,
                         "tta": card.get("tta", []), "seconds": round(time.time() - t, 1),
                         "recipe": dict(card.get("recipe", {}), members=card.get("members"))})
    return {"rows": rows}


def _command(recipe: dict, name: str, kind: str) -> str:
    if kind == "ensemble":
        members = " ".join(m["name"] for m in recipe.get("members") or [])
        return f"python -m training ensemble --name {name} --members {members} --weights {recipe.get('weights')}"
    if recipe.get("command"):
        return recipe["command"]
    if recipe.get("stages", {}).get("commands"):
        return " && ".join(c.split("  #")[0].strip() for c in recipe["stages"]["commands"])
    skip = {"name", "source", "params", "clean_report", "train_class_counts", "epochs_run", "best_epoch",
            "selected_on", "layers_initialised_from_init_from", "wall_time_s", "machine", "out_dir",
            "run_dir", "data", "image_folder", "limit", "title", "input_size", "stages", "total_epochs", "members"}
    parts = [f"python -m training train --name {name}"]
    for k, v in recipe.items():
        if k in skip or v in ("", 0, None):
            continue
        flag = "--" + k.replace("_", "-")
        if k == "clean":
            parts.append("" if v else "--no-clean")
        elif k == "augment":
            parts.append("" if v else "--no-augment")
        elif k == "tta":
            parts.append(f"--tta {','.join(v) or 'none'}")
        else:
            parts.append(f"{flag} {v}")
    return " ".join(p for p in parts if p)


def markdown(res: dict) -> str:
    lines = ["| model | split | accuracy | macro-F1 | recall per class | TTA | = card |",
             "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        rec = ", ".join(f"{c} {v:.2f}" for c, v in r["recall"].items())
        lines.append(f"| {r['model']} | {r['split']} | **{r['accuracy'] * 100:.2f}%** | {r['macro_f1']:.3f} | "
                     f"{rec} | {','.join(r['tta']) or '-'} | {'yes' if r['matches_card'] else 'NO'} |")
    lines.append("")
    lines.append("How each model was trained (seed, epochs, wall time are in its card's `recipe`):")
    lines.append("")
    seen = set()
    for r in res["rows"]:
        if r["model"] in seen:
            continue
        seen.add(r["model"])
        rc = r["recipe"]
        extra = (f" — {rc.get('total_epochs') or rc.get('epochs_run') or rc.get('epochs')} epochs, seed {rc.get('seed')}, "
                 f"{rc.get('wall_time_s', 0) / 60:.0f} min wall on {rc.get('machine', '?')}, "
                 f"best epoch {rc.get('best_epoch')} chosen on {rc.get('selected_on')}") if r["kind"] != "ensemble" else ""
        lines.append(f"- `{r['model']}`: `{_command(rc, r['model'], r['kind'])}`{extra}")
    return "\n".join(lines)
