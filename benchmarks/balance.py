"""The seed's class-balancing methods, measured on the FER+ backbone (`training.heads`): each method
fits a new last layer on the fixed features of the FER+ training faces, every head gets the bias shift
`tau * log prior` chosen on FER+ val, and the rule fixed beforehand picks one head on FER+ val. FER+ test
is only reported. Then the chosen head's temperature (fitted on FER+ val) and confidence rule."""

from __future__ import annotations

from .common import REPO

BACKBONE = "ferplus_mobilenet"


def run(args) -> dict:
    from training.heads import refit

    report = refit(REPO / "models" / f"{getattr(args, 'backbone', None) or BACKBONE}.json")
    return {k: v for k, v in report.items() if not k.startswith("_")}


def markdown(res: dict) -> str:
    from training.heads import table

    cal, conf = res["calibration"], res["confidence"]
    return "\n".join(
        [
            f"Backbone `{res['card']}` (its shipped last layer is the `original` row). Rule: {res['selection']['rule']}. "
            "Recall columns are FER+ test.",
            "",
            table(res),
            "",
            f"Chosen: **{res['selection']['chosen']}**, tau {res['selection']['tau']}. Temperature "
            f"{cal['temperature']:.3f} (fitted on FER+ val): ECE {cal['ece_before']['ferplus_val']:.1%} -> "
            f"{cal['ece_after']['ferplus_val']:.1%} on val, {cal['ece_before']['ferplus_test']:.1%} -> "
            f"{cal['ece_after']['ferplus_test']:.1%} on test. Confidence rule (val, confident answers right "
            f">= {conf['target_accuracy']:.0%}): top >= {conf['min_top']}, margin >= {conf['min_margin']}; "
            f"answers {conf['coverage']:.0%} of val faces without hedging ({conf['accuracy_confident']:.1%} right); "
            f"on test {conf['ferplus_test']['coverage']:.0%} ({conf['ferplus_test']['accuracy_confident']:.1%} right, "
            f"{conf['ferplus_test']['accuracy_hedged']:.1%} on the hedged rest).",
            "",
            "This table is measured with the mirror average (the backbone's own TTA). The shipped default, "
            "`ferplus_mobilenet_cal`, is the same rule rerun on the un-mirrored view it is served with "
            "(`python -m training heads --card models/ferplus_mobilenet.json --tta none`, methods original, "
            "logit_adjust, none): it chose `none` too (tau 0.2, beta 0.5); its own numbers are in its card "
            "and in the table above.",
        ]
    )
