"""Accuracy of every shipped model card on its named splits, recomputed from the data.

The numbers must equal those the card carries (written when the model was trained/ensembled);
the benchmark recomputes them so the page states what the shipped files do, not what a log said.
"""

from __future__ import annotations

import time

from .common import REPO


def run(args) -> dict:
    from model_core.card import metrics_key, read_card
    from training.data import load_splits
    from training.evaluate import measure

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
            rows.append(
                {
                    "model": card["name"],
                    "kind": card.get("kind", "single"),
                    "split": key,
                    "accuracy": round(m["accuracy"], 4),
                    "macro_f1": round(m["macro_f1"], 4),
                    "recall": {c: round(v["recall"], 3) for c, v in m["per_class"].items()},
                    "matches_card": stored is not None and abs(stored - m["accuracy"]) < 1e-6,
                    "tta": card.get("tta", []),
                    "seconds": round(time.time() - t, 1),
                    "recipe": dict(card.get("recipe", {}), members=card.get("members")),
                }
            )
    return {"rows": rows}


def _command(recipe: dict, name: str, kind: str) -> str:
    if kind == "ensemble":
        members = " ".join(m["name"] for m in recipe.get("members") or [])
        return f"python -m training ensemble --name {name} --members {members} --weights {recipe.get('weights')}"
    # every single card carries the command(s) that made it (tests/training/test_cli.py checks they parse)
    return recipe.get("command") or "(no recipe command)"


def markdown(res: dict) -> str:
    lines = [
        "| model | split | accuracy | macro-F1 | recall per class | TTA | = card |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        rec = ", ".join(f"{c} {v:.2f}" for c, v in r["recall"].items())
        lines.append(
            f"| {r['model']} | {r['split']} | **{r['accuracy'] * 100:.2f}%** | {r['macro_f1']:.3f} | "
            f"{rec} | {','.join(r['tta']) or '-'} | {'yes' if r['matches_card'] else 'NO'} |"
        )
    lines.append("")
    lines.append("How each model was trained (seed, epochs, wall time are in its card's `recipe`):")
    lines.append("")
    seen = set()
    for r in res["rows"]:
        if r["model"] in seen:
            continue
        seen.add(r["model"])
        rc = r["recipe"]
        extra = (
            (
                f" — {rc.get('total_epochs') or rc.get('epochs_run') or rc.get('epochs')} epochs, seed {rc.get('seed')}, "
                f"{rc.get('wall_time_s', 0) / 60:.0f} min wall on {rc.get('machine', '?')}, "
                f"best epoch {rc.get('best_epoch')} chosen on {rc.get('selected_on')}"
            )
            if r["kind"] != "ensemble"
            else ""
        )
        lines.append(f"- `{r['model']}`: `{_command(rc, r['model'], r['kind'])}`{extra}")
    return "\n".join(lines)
