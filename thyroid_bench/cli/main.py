"""The ``thyroid-bench`` command line: parses arguments and calls functions.

Every command has a Python function behind it; this module holds no logic of
its own beyond turning arguments into calls and results into exit codes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from thyroid_bench.errors import ThyroidBenchError, os_error_line
from thyroid_bench.tasks import DEFAULT_TASK, get_task, list_tasks

__all__ = ["main", "build_parser"]


# --------------------------------------------------------------------------- data
def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="build a dataset version (default: the synthetic reference cohort tsb-synthetic)",
        description="Build a dataset version in format v1 under the thyroid-bench home. "
        "By default builds the synthetic reference cohort tsb-synthetic 1.0.0 offline; "
        "--source dicom ingests a DICOM archive and a labels CSV; --source hub pulls a "
        "published version from the Hugging Face Hub.",
    )
    p.add_argument("--source", choices=("synthetic", "dicom", "hub"), default="synthetic")
    p.add_argument("--task", default=None,
                   help="dicom: the task the labels CSV labels (default: four-pattern; "
                   "`thyroid-bench tasks` lists them); hub: the task the version must be for; "
                   "synthetic: builds the task's synthetic cohort (residual-tissue: tsb-residual)")
    p.add_argument("--dataset", default=None,
                   help="synthetic: the cohort to build, tsb-synthetic (default, four-pattern) or "
                   "tsb-residual (residual-tissue)")
    p.add_argument("--home", type=Path, default=None,
                   help="dataset home (default: $THYROID_BENCH_HOME, else ~/.cache/thyroid-bench); "
                   "dicom: the archive's pixels wait there uncompressed while it is read, so it "
                   "needs about the archive's pixel data free, besides the dataset")
    p.add_argument("--force", action="store_true", help="rebuild even if the version exists")
    p.add_argument("--preview", type=Path, default=None, metavar="PNG",
                   help="also write a grid of example images per class and centre to this PNG")
    p.add_argument("--seed", type=int, default=None,
                   help="synthetic: generator seed (default: the official seed; any other "
                   "seed builds an unofficial variant named tsb-synthetic-seed<N>)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes that render phantoms (synthetic) or read files (dicom); "
                   "default: all cores")
    p.add_argument("--private-labels", default=None, metavar="SPLITS",
                   help="withhold the labels of these evaluation splits (comma-separated, e.g. "
                   "external or internal,external): the dataset folder holds none of them, the "
                   "organisers get a separate labels file (synthetic: builds the unofficial "
                   "variant <cohort>-private); hub: the published version decides")
    p.add_argument("--private-labels-file", type=Path, default=None, metavar="FILE",
                   help="with --private-labels: where the organisers' labels file goes (default: "
                   "<home>/private/<name>@<version>/labels.csv; never inside the dataset folder)")
    g = p.add_argument_group("DICOM source")
    g.add_argument("--dicom-dir", type=Path, help="folder searched recursively for DICOM files")
    g.add_argument("--labels", type=Path, help="labels CSV (see README: 'Labels CSV')")
    g.add_argument("--name", help="dataset name, e.g. westchina-thyroid")
    g.add_argument("--version", dest="dataset_version", help="semver version, e.g. 1.0.0")
    g.add_argument("--key-file", type=Path,
                   help="secret key for keyed pseudonyms (created if missing; keep it outside the dataset)")
    g.add_argument("--external-center", action="append", default=[],
                   help="centre whose studies form the external split (repeatable)")
    g.add_argument("--internal-fraction", type=float, default=0.2,
                   help="fraction of non-external patients held out as 'internal' (default 0.2)")
    g.add_argument("--split-seed", type=int, default=0, help="seed of the patient-level split")
    g.add_argument("--allow-burned-in", action="store_true",
                   help="ingest images flagged Burned In Annotation = YES (rejected by default)")
    g.add_argument("--skip-unreadable", action="store_true",
                   help="list folders and files that cannot be read as rejected and ingest the "
                   "rest (by default they stop the run, named, before anything is written)")
    g.add_argument("--keep-ages-over-89", action="store_true",
                   help="store ages above 89 as recorded (by default they are stored as 90, "
                   "HIPAA Safe Harbor style)")
    g = p.add_argument_group("Hub source")
    g.add_argument("--repo-id", help="Hugging Face dataset repository, e.g. ORG/tsb-synthetic")
    g.add_argument("--revision", default=None, help="branch, tag or commit of the repository")
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args: argparse.Namespace) -> int:
    if args.private_labels_file is not None and not args.private_labels:
        raise ThyroidBenchError("--private-labels-file needs --private-labels SPLITS (the splits "
                                "whose labels it holds)")
    if args.source == "synthetic":
        from thyroid_bench.data.synthetic.prepare import prepare_synthetic

        path = prepare_synthetic(home=args.home, seed=args.seed, force=args.force,
                                 preview=args.preview, workers=args.workers,
                                 dataset=_synthetic_cohort(args.task, args.dataset),
                                 private_labels=args.private_labels,
                                 labels_file=args.private_labels_file)
    elif args.source == "dicom":
        from thyroid_bench.data.dicom.ingest import prepare_dicom

        missing = [f for f in ("dicom_dir", "labels", "name", "dataset_version", "key_file")
                   if getattr(args, f) is None]
        if missing:
            flags = ", ".join("--" + m.replace("dataset_version", "version").replace("_", "-")
                              for m in missing)
            raise ThyroidBenchError(f"--source dicom needs {flags}")
        path = prepare_dicom(
            dicom_dir=args.dicom_dir, labels=args.labels, name=args.name,
            version=args.dataset_version, key_file=args.key_file,
            external_centers=args.external_center, home=args.home,
            internal_fraction=args.internal_fraction, split_seed=args.split_seed,
            allow_burned_in=args.allow_burned_in, force=args.force, workers=args.workers,
            task=args.task or DEFAULT_TASK, skip_unreadable=args.skip_unreadable,
            keep_ages_over_89=args.keep_ages_over_89, private_labels=args.private_labels,
            labels_file=args.private_labels_file,
        )
    else:
        from thyroid_bench.data.hub import prepare_hub

        if not args.repo_id:
            raise ThyroidBenchError("--source hub needs --repo-id ORG/NAME")
        if args.private_labels or args.private_labels_file:
            raise ThyroidBenchError("--private-labels: a version pulled from the Hub withholds the "
                                    "labels its publisher withheld; drop the option")
        path = prepare_hub(repo_id=args.repo_id, revision=args.revision, home=args.home,
                           force=args.force, task=args.task)
    print(f"dataset ready: {path}")
    return 0


def _synthetic_cohort(task: str | None, dataset: str | None) -> str:
    """The synthetic cohort that ``--dataset`` names, or that serves ``--task``; they must agree."""
    from thyroid_bench.data.synthetic.prepare import COHORTS, DEFAULT_COHORT, cohort_for_task

    if dataset is not None and dataset not in COHORTS:
        raise ThyroidBenchError(f"--dataset {dataset}: not a synthetic cohort; expected one of "
                                f"{', '.join(COHORTS)} (--source dicom or hub for others)")
    if task is None:
        return dataset or DEFAULT_COHORT
    name = get_task(task).name
    served = COHORTS[dataset].module.TASK.name if dataset else None
    if served is not None and served != name:
        raise ThyroidBenchError(f"--task {task}: the synthetic cohort {dataset} serves task "
                                f"{served}, not {name}")
    return dataset or cohort_for_task(name)


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check a dataset: manifest, schema, fingerprints, counts, leakage")
    p.add_argument("dataset", nargs="?", default=None,
                   help="dataset name, name@version or folder (default: tsb-synthetic)")
    p.add_argument("--home", type=Path, default=None)
    p.set_defaults(func=_cmd_verify)


def _cmd_verify(args: argparse.Namespace) -> int:
    from thyroid_bench.data.format import resolve_dataset
    from thyroid_bench.data.verify import verify_dataset

    report = verify_dataset(resolve_dataset(args.dataset, home=args.home))
    print(report.render())
    return 0 if report.ok else 1


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="counts per split, class and centre, as a table")
    p.add_argument("dataset", nargs="?", default=None,
                   help="dataset name, name@version or folder (default: tsb-synthetic)")
    p.add_argument("--home", type=Path, default=None)
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    from thyroid_bench.data.format import dataset_info, resolve_dataset

    print(dataset_info(resolve_dataset(args.dataset, home=args.home)))
    return 0


def _add_tasks(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list the tasks: classes, main score, datasets",
                       description="List the registered tasks: name, target kind, classes (with "
                       "the paper's codes), the main score the leaderboard ranks by, and the "
                       "datasets known for each (built in, pinned official versions, and "
                       "versions prepared in the dataset home).")
    p.add_argument("--home", type=Path, default=None, help="dataset home searched for prepared versions")
    p.add_argument("--json", action="store_true", help="print the task definitions as JSON")
    p.set_defaults(func=_cmd_tasks)


def _cmd_tasks(args: argparse.Namespace) -> int:
    import json

    from thyroid_bench.data.format import default_home, known_datasets

    home = args.home or default_home()
    known = known_datasets(home)
    if args.json:
        print(json.dumps([{**t.model_dump(mode="json"), "known_datasets": known.get(t.name, [])}
                          for t in list_tasks()], indent=2))
        return 0
    for t in list_tasks():
        print(f"{t.name}  ({t.target.kind}, label schema v{t.schema_version})  {t.reference.citation}"
              + (f", doi {t.reference.doi}" if t.reference.doi else ""))
        print(f"  {t.description}")
        print(f"  classes     {', '.join(t.class_label(c.index) for c in t.classes)}")
        print(f"  main score  {t.main_score.split} {t.main_score.metric} "
              f"(model selection: {t.selection_metric})")
        print(f"  datasets    {', '.join(known.get(t.name, [])) or 'none'}")
    for task in sorted(set(known) - {t.name for t in list_tasks()}):
        what = "unreadable manifests" if task == "?" else f"task {task!r} (not registered here)"
        print(f"{what}: {', '.join(known[task])}; `thyroid-bench verify` says more")
    if not home.is_dir():
        print(f"(dataset home {home} does not exist yet: `thyroid-bench prepare` creates it)")
    return 0


# --------------------------------------------------------------------------- main
_COMMANDS = [_add_prepare, _add_verify, _add_info, _add_tasks]


def build_parser() -> argparse.ArgumentParser:
    from thyroid_bench.version import __version__

    parser = argparse.ArgumentParser(
        prog="thyroid-bench",
        description="Benchmark datasets, baselines and leaderboard for AI reading of thyroid "
        "scintigrams; `thyroid-bench tasks` lists the tasks (four-pattern: the four uptake "
        "patterns of Qiao et al. 2021).",
    )
    parser.add_argument("--version", action="version", version=f"thyroid-bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    # Model and result commands live beside the layers they drive.
    from thyroid_bench.cli import harness as cli_harness, results as cli_results

    cli_harness.add_commands(sub)
    cli_results.add_commands(sub)
    from thyroid_bench.cli import entries as cli_entries

    cli_entries.add_commands(sub)
    from thyroid_bench.cli import publish as cli_publish

    cli_publish.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ThyroidBenchError as exc:
        print(f"thyroid-bench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # one not turned into a ThyroidBenchError where it arose: one line
        print(f"thyroid-bench {args.command}: error: {os_error_line(exc, 'operating-system error')}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"thyroid-bench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
