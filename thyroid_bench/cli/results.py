"""Result commands of the ``thyroid-bench`` CLI: ``score``, ``submit``, ``leaderboard``.

Each command parses its arguments and calls one library function; user errors are
raised as :class:`thyroid_bench.errors.ThyroidBenchError`, which the main CLI prints
and turns into exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from thyroid_bench.tasks import SPLITS

__all__ = ["add_commands"]


# --------------------------------------------------------------------------- score
def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score a predictions file from any model (the task's tables, CIs, figures)",
        description="Score a predictions CSV (case_id, prob_<class> per class, the task's "
        "regression column if it has one (residual-tissue: uptake_pct), optional label). "
        "With --split, against that split of a dataset (default: the default dataset of the "
        "file's task, tsb-synthetic for four-pattern, tsb-residual for residual-tissue); "
        "the file must then cover exactly the split's cases, and the task is the dataset's "
        "(its uptake_pct too). "
        "Without --split, against the file's own label column, for --task (default: the task "
        "whose probability columns the file has). Prints the task's tables with bootstrap 95% "
        "CIs (four-pattern: the paper's Table 2 layout; residual-tissue: detection on "
        "P(present) = 1 - P(absent), grade and uptake figures) and writes report.md with ROC "
        "and confusion-matrix figures.",
    )
    p.add_argument("predictions", type=Path, metavar="PREDICTIONS.csv")
    p.add_argument("--dataset", default=None,
                   help="dataset name, name@version or folder (default with --split: the "
                   "task's default dataset, e.g. tsb-synthetic or tsb-residual)")
    p.add_argument("--split", default=None, choices=SPLITS,
                   help="score against this split's labels (default: the file's label column)")
    p.add_argument("--task", default=None,
                   help="task of the file's classes (default: inferred from its prob_<class> "
                   "columns; `thyroid-bench tasks`); with --split, the dataset must be for it")
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
    from thyroid_bench.bounds import SEED_MAX
    from thyroid_bench.errors import ThyroidBenchError
    from thyroid_bench.evaluation.report import format_tables
    from thyroid_bench.evaluation.scoring import score_predictions
    from thyroid_bench.tasks import get_task

    if args.bootstrap < 0:
        raise ThyroidBenchError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    if not 0 <= args.seed <= SEED_MAX:
        raise ThyroidBenchError(f"--seed must be from 0 to 2**32 - 1, got {args.seed}")
    figures = None
    if not args.no_figures:
        figures = args.figures or args.predictions.with_name(f"{args.predictions.stem}_report")
    result = score_predictions(
        args.predictions, dataset=args.dataset, split=args.split, home=args.home, task=args.task,
        json_out=args.json_out, figures_dir=figures, bootstrap=args.bootstrap, seed=args.seed,
    )
    ds = result["dataset"]
    against = (f"{ds['name']} {ds['version']} split {result['split']} "
               f"(fingerprint {ds['fingerprint'][:12]})" if ds else "its own label column")
    print(f"{args.predictions}: scored against {against}, n = {result['metrics']['n']}\n")
    print(format_tables(result["metrics"], task=get_task(result["task"])))
    if args.json_out:
        print(f"\nscores written to {args.json_out}")
    if "report" in result:
        print(f"report and figures written to {result['report']}")
    return 0


# --------------------------------------------------------------------------- submit
def _add_submit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "submit",
        help="check run folders, recompute their metrics, add them to the leaderboard, re-render",
        description="Check each RUN_DIR (entry schema, dataset fingerprint, predictions hashes and "
        "coverage, every metric recomputed from the predictions, no duplicate, no copy of a "
        "listed entry's predictions) and add the entries to the leaderboard folder, then "
        "re-render its README.md, index.html and ranking CSVs. Splits whose labels the dataset "
        "withholds are scored from the organisers' file (--private-labels). Nothing is "
        "written unless every run passes. --hub also opens a pull request on a Hugging Face "
        "dataset repository with the new entries. --reproduce also re-evaluates each run from its "
        "model.safetensors and config.json (predictions equal within 1e-5, same argmax); "
        "--retrain trains it again (byte-identical predictions); the entry is then stored with "
        "reproduced.json and the page marks it.",
    )
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                   help="run folder(s) written by `thyroid-bench run` or `thyroid-bench entry new`")
    p.add_argument("--leaderboard", type=Path, default=Path("leaderboard"), metavar="DIR",
                   help="leaderboard folder (default: ./leaderboard)")
    p.add_argument("--home", type=Path, default=None,
                   help="dataset home holding the entries' dataset version (default: "
                   "$THYROID_BENCH_HOME, else ~/.cache/thyroid-bench)")
    p.add_argument("--hub", default=None, metavar="REPO_ID",
                   help="also open a pull request with the entries on this Hugging Face dataset "
                   "repository (needs a token: hf auth login or HF_TOKEN)")
    p.add_argument("--reproduce", action="store_true",
                   help="also reproduce each run by evaluation from its checkpoint (seconds)")
    p.add_argument("--retrain", action="store_true",
                   help="reproduce each run by training it again with its seed, protocol, threads "
                   "and device settings (minutes for quick on a CPU; implies --reproduce)")
    p.add_argument("--private-labels", type=Path, default=None, metavar="FILE",
                   help="organisers: the labels file of a dataset version prepared with "
                   "--private-labels (its SHA-256 must be the one its manifest records); scores the "
                   "withheld splits, whose labels the leaderboard never stores")
    p.set_defaults(func=_cmd_submit)


def _cmd_submit(args: argparse.Namespace) -> int:
    from thyroid_bench.leaderboard import submit

    result = submit(args.run_dirs, leaderboard=args.leaderboard, home=args.home, hub=args.hub,
                    reproduce=args.reproduce, retrain=args.retrain, log=_progress,
                    private_labels=args.private_labels)
    how = (" (reproduced by retraining)" if args.retrain
           else " (reproduced by evaluation)" if args.reproduce else "")
    for eid, path in zip(result.entry_ids, result.paths):
        print(f"accepted {eid}{how}: {path}")
    print(f"leaderboard re-rendered: {args.leaderboard / 'README.md'}, {args.leaderboard / 'index.html'}")
    if result.pr_url:
        print(f"pull request opened: {result.pr_url}")
    return 0


# --------------------------------------------------------------------------- leaderboard
def _add_leaderboard(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="print the leaderboard's ranking (and render its pages); `leaderboard check`: "
        "reproduce its entries from their run folders",
        description="Group the leaderboard's entries by model, protocol and dataset version "
        "(mean and sd over seeds), one section per task, each ranked by its task's main score "
        "(four-pattern: external macro F1; residual-tissue: external detection balanced "
        "accuracy, with the published results shown as reference lines, never ranked) with "
        "paired-bootstrap ties, and print the ranking. Every stored entry is re-checked on each "
        "run (schema, hashes, its section's pinned labels, every figure recomputed from its "
        "stored predictions and labels); one that fails is named and the command refuses, "
        "unless --skip-invalid. `thyroid-bench leaderboard check --runs DIR` reproduces each "
        "stored entry from its run folder under DIR (found by the SHA-256 of its entry.json or "
        "predictions, not by name; DIR may be hf://ORG/REPO/path): by evaluation from "
        "model.safetensors, or with --retrain by training again; one line per entry; --write "
        "stores the records (reproduced.json) and re-renders the pages. Exit status 1 when an "
        "entry with a run folder is not reproduced.",
    )
    p.add_argument("action", nargs="?", choices=("check",), default=None,
                   help="check: reproduce the stored entries from their run folders (--runs)")
    p.add_argument("--leaderboard", type=Path, default=Path("leaderboard"), metavar="DIR",
                   help="leaderboard folder (default: ./leaderboard)")
    p.add_argument("--html", type=Path, default=None, metavar="OUT",
                   help="write the self-contained HTML page to OUT")
    p.add_argument("--render", action="store_true",
                   help="rewrite DIR/README.md, DIR/index.html, DIR/ranking-<task>.csv and "
                   "DIR/schema/entry-v1.json")
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave out stored entries that fail their checks (each is named on "
                   "stderr) instead of refusing")
    p.add_argument("--private-labels", type=Path, default=None, metavar="FILE",
                   help="organisers: also recompute the figures of withheld splits from their "
                   "labels file (they must equal the ones stored at submission)")
    g = p.add_argument_group("check")
    g.add_argument("--runs", default=None, metavar="DIR",
                   help="folder holding the run folders (searched recursively), or a Hub location "
                   "hf://[datasets/]ORG/REPO[@REVISION]/path")
    g.add_argument("--retrain", action="store_true",
                   help="reproduce by training again (byte-identical predictions), not by evaluation")
    g.add_argument("--write", action="store_true",
                   help="store the records of the reproduced entries and re-render the pages")
    g.add_argument("--entry", action="append", default=[], metavar="PATTERN",
                   help="check only entries whose id matches this pattern (fnmatch; repeatable)")
    g.add_argument("--home", type=Path, default=None,
                   help="dataset home holding the entries' dataset versions (default: "
                   "$THYROID_BENCH_HOME, else ~/.cache/thyroid-bench)")
    p.set_defaults(func=_cmd_leaderboard)


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from thyroid_bench.errors import ThyroidBenchError
    from thyroid_bench.leaderboard import render_leaderboard, render_text

    check_only = [f"--{n}" for n in ("runs", "retrain", "write", "entry", "home")
                  if getattr(args, n)]
    if args.action == "check":
        return _cmd_check(args)
    if check_only:
        raise ThyroidBenchError(f"{', '.join(check_only)}: options of `thyroid-bench leaderboard "
                                "check`; add `check`")

    board = render_leaderboard(args.leaderboard, html_out=args.html, write=args.render,
                               skip_invalid=args.skip_invalid, private_labels=args.private_labels)
    for bad in board.invalid:
        print(f"thyroid-bench leaderboard: left out (--skip-invalid): {bad}", file=sys.stderr)
    print(render_text(board))
    if args.render:
        print(f"\nrendered {args.leaderboard / 'README.md'} and {args.leaderboard / 'index.html'}")
    if args.html:
        print(f"\nHTML page written to {args.html}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from thyroid_bench.errors import ThyroidBenchError
    from thyroid_bench.leaderboard.board_check import check_leaderboard

    if args.runs is None:
        raise ThyroidBenchError("leaderboard check needs --runs DIR (the folder holding the run "
                                "folders, or hf://ORG/REPO/path)")
    mixed = [f"--{n.replace('_', '-')}" for n in ("html", "render", "skip_invalid", "private_labels")
             if getattr(args, n)]
    if mixed:
        raise ThyroidBenchError(f"{', '.join(mixed)}: not options of `leaderboard check` "
                                "(--write re-renders the pages)")
    result = check_leaderboard(args.leaderboard, args.runs, retrain=args.retrain, write=args.write,
                               home=args.home, only=args.entry, log=_progress,
                               on_entry=lambda e: print(e.line(), flush=True))
    for bad in result.invalid:
        print(f"INVALID (not checked): {bad}")
    for path in result.written:
        print(f"record written: {path}")
    if result.written:
        print(f"leaderboard re-rendered: {args.leaderboard / 'README.md'}, "
              f"{args.leaderboard / 'index.html'}")
    print(result.summary())
    return 0 if result.ok else 1


def _progress(msg: str) -> None:
    """A progress line of long work, on stderr (stdout keeps the results)."""
    print(f"thyroid-bench: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- entry
_COMMANDS = [_add_score, _add_submit, _add_leaderboard]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the result commands to the ``thyroid-bench`` subparsers."""
    for add in _COMMANDS:
        add(sub)
