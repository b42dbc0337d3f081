"""Result commands of the ``thyroid-bench`` CLI: ``score`` (later ``submit``, ``leaderboard``).

Each command parses its arguments and calls one library function; user errors are
raised as :class:`thyroid_bench.errors.ThyroidBenchError`, which the main CLI prints
and turns into exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_commands"]


# --------------------------------------------------------------------------- score
def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score a predictions file from any model (paper's Table 2 layout, CIs, figures)",
        description="Score a predictions CSV (case_id, prob_<class> per class, optional label). "
        "With --split, against that split of a dataset (default: the prepared tsb-synthetic); "
        "the file must then cover exactly the split's cases. Without --split, against the "
        "file's own label column. Prints the paper's Table 2 layout with bootstrap 95% CIs and "
        "writes report.md with ROC and confusion-matrix figures.",
    )
    p.add_argument("predictions", type=Path, metavar="PREDICTIONS.csv")
    p.add_argument("--dataset", default=None,
                   help="dataset name, name@version or folder (default with --split: tsb-synthetic)")
    p.add_argument("--split", default=None, choices=("train", "internal", "external"),
                   help="score against this split's labels (default: the file's label column)")
    p.add_argument("--json", dest="json_out", type=Path, default=None, metavar="OUT",
                   help="write the scores as JSON to this file")
    p.add_argument("--figures", type=Path, default=None, metavar="DIR",
                   help="folder for report.md and the figures (default: <file stem>_report/ "
                   "beside the predictions file)")
    p.add_argument("--no-figures", action="store_true", help="write no report or figures")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for the confidence intervals (default 1000; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--home", type=Path, default=None,
                   help="dataset home (default: $THYROID_BENCH_HOME, else ~/.cache/thyroid-bench)")
    p.set_defaults(func=_cmd_score)


def _cmd_score(args: argparse.Namespace) -> int:
    from thyroid_bench.errors import ThyroidBenchError
    from thyroid_bench.report import format_table2
    from thyroid_bench.scoring import score_predictions

    if args.bootstrap < 0:
        raise ThyroidBenchError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    figures = None
    if not args.no_figures:
        figures = args.figures or args.predictions.with_name(f"{args.predictions.stem}_report")
    result = score_predictions(
        args.predictions, dataset=args.dataset, split=args.split, home=args.home,
        json_out=args.json_out, figures_dir=figures, bootstrap=args.bootstrap, seed=args.seed,
    )
    ds = result["dataset"]
    against = (f"{ds['name']} {ds['version']} split {result['split']} "
               f"(fingerprint {ds['fingerprint'][:12]})" if ds else "its own label column")
    print(f"{args.predictions}: scored against {against}, n = {result['metrics']['n']}\n")
    print(format_table2(result["metrics"]))
    if args.json_out:
        print(f"\nscores written to {args.json_out}")
    if "report" in result:
        print(f"report and figures written to {result['report']}")
    return 0


# --------------------------------------------------------------------------- entry
_COMMANDS = [_add_score]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the result commands to the ``thyroid-bench`` subparsers."""
    for add in _COMMANDS:
        add(sub)
