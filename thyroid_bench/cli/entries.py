"""Entry commands of the ``thyroid-bench`` CLI: ``entry new`` (an entry from predictions made
anywhere, :func:`thyroid_bench.leaderboard.external.new_entry`).

The command parses its arguments and calls the library function; user errors are raised as
:class:`thyroid_bench.errors.ThyroidBenchError`, which the main CLI prints as one line with
exit status 2.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["add_commands"]

_DESCRIPTION = (
    "Turn predictions made outside thyroid-bench (another framework, a vendor's product, a "
    "human reader) into a run folder that `thyroid-bench submit` accepts. --predictions DIR "
    "holds one CSV per evaluation split of the dataset's task (internal.csv, external.csv): "
    "either case_id and one prob_<class> column per class (the format `thyroid-bench score` "
    "reads; residual-tissue may add uptake_pct), or case_id and prediction (a class name, code "
    "or index per case, turned into one-hot probabilities: figures such as AUC are then those "
    "of a hard call). Every file must cover exactly the split's cases. The metrics are computed "
    "as the harness computes them; the entry records origin 'external' (not trained or "
    "reproducible by the harness) and the leaderboard marks its rows. Nothing is written unless "
    "every file is valid; an existing --out is refused.")


def _add_entry_new(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("new", help="a run folder from prediction files made anywhere",
                       description=_DESCRIPTION)
    p.add_argument("--predictions", type=Path, required=True, metavar="DIR",
                   help="folder with <split>.csv for every evaluation split of the task")
    p.add_argument("--dataset", required=True, metavar="NAME[@VERSION]",
                   help="the dataset version predicted (in the dataset home), e.g. tsb-synthetic@1.0.0")
    p.add_argument("--model-name", required=True, metavar="NAME",
                   help="the row's name on the leaderboard (letters, digits, . _ - : / @ +, space)")
    p.add_argument("--out", type=Path, default=None, metavar="RUN_DIR",
                   help="run folder to write; must not exist (default: "
                   "runs/<model name>-external-<UTC time>)")
    p.add_argument("--kind", choices=("model", "human reader"), default="model",
                   help="'model' (default) or 'human reader' (a person's reads)")
    p.add_argument("--parameters", type=int, default=None, metavar="N",
                   help="the model's parameter count (required for --kind model; 0 for a reader)")
    p.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="the square input size in pixels the model was run at (required for "
                   "--kind model; a reader: the largest image matrix of the evaluation splits)")
    p.add_argument("--architecture", default=None, metavar="TEXT", help="e.g. 'MONAI DenseNet121'")
    p.add_argument("--pretrained-weights", default=None, metavar="TEXT",
                   help="weights the model started from, e.g. 'ImageNet-1k' (default 'not given'; "
                   "'none' for a reader)")
    p.add_argument("--training-data", default=None, metavar="TEXT",
                   help="what the model was trained on (or the reader's experience)")
    p.add_argument("--code-url", default=None, metavar="URL", help="where the model's code is (http(s))")
    p.add_argument("--weights-url", default=None, metavar="URL",
                   help="where its trained weights are (http(s))")
    p.add_argument("--licence", default=None, metavar="TEXT", help="licence of the code and weights")
    p.add_argument("--submitter", default=None, metavar="TEXT",
                   help="who submits (default: $THYROID_BENCH_SUBMITTER, else anonymous)")
    p.add_argument("--notes", default=None, metavar="TEXT", help="free text, one line")
    p.add_argument("--seed", type=int, default=0,
                   help="the training seed of these predictions (rows show mean and sd over seeds)")
    p.add_argument("--home", type=Path, default=None,
                   help="dataset home (default: $THYROID_BENCH_HOME, else ~/.cache/thyroid-bench)")
    p.set_defaults(func=_cmd_entry_new)


def _cmd_entry_new(args: argparse.Namespace) -> int:
    from thyroid_bench.harness.run import run_dir_name
    from thyroid_bench.leaderboard.external import ExternalModel, new_entry
    from thyroid_bench.leaderboard.rules import EXTERNAL_PROTOCOL

    out = args.out or Path("runs") / run_dir_name(args.model_name, EXTERNAL_PROTOCOL,
                                                  datetime.now(timezone.utc))
    model = ExternalModel(
        name=args.model_name, kind=args.kind, parameters=args.parameters,
        input_size=args.input_size, architecture=args.architecture,
        pretrained=args.pretrained_weights, training_data=args.training_data,
        code_url=args.code_url, weights_url=args.weights_url, licence=args.licence, notes=args.notes)
    entry = new_entry(args.predictions, dataset=args.dataset, model=model, out=out, seed=args.seed,
                      submitter=args.submitter, home=args.home)
    counts = ", ".join(f"{split} n={f.rows}" for split, f in entry.predictions.items())
    print(f"entry written: {out} ({entry.model.kind} {entry.model.name}, {entry.dataset.spec}, "
          f"{counts}, origin external)")
    print(f"submit it with: thyroid-bench submit {out}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``entry`` (with its subcommand ``new``) to the ``thyroid-bench`` subparsers."""
    p = sub.add_parser("entry", help="make a leaderboard entry from predictions made anywhere",
                       description="Leaderboard entries not made by `thyroid-bench run`.")
    entry_sub = p.add_subparsers(dest="entry_command", required=True, metavar="SUBCOMMAND")
    _add_entry_new(entry_sub)
