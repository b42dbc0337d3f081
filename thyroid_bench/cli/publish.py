"""``thyroid-bench publish``: put a verified dataset version on the Hugging Face Hub.

Argument parsing only; the work is :func:`thyroid_bench.data.publish.publish_dataset`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``publish`` to the main parser's subcommands."""
    p = sub.add_parser(
        "publish", help="put a verified dataset version on the Hugging Face Hub",
        description="Upload a dataset version folder (card, manifest, shards, rejected.csv; "
        "nothing else) to a Hub dataset repository in one commit, after `verify` passes and a "
        "last scan of every text it holds (card, manifest, rejected.csv, shard names, metadata "
        "and cells, file names) finds no identifier of the DICOM archive it was built from. The "
        "published card adds how to load it from the repository (datasets.load_dataset and "
        "`thyroid-bench prepare --source hub`); the fingerprint does not change. Needs a Hugging "
        "Face token with write access (`hf auth login` or HF_TOKEN).")
    p.add_argument("dataset", metavar="NAME[@VERSION]",
                   help="dataset name (newest version), name@version or version folder")
    p.add_argument("--repo", required=True, metavar="ORG/NAME",
                   help="Hub dataset repository (created if missing)")
    p.add_argument("--private", action="store_true",
                   help="make the repository private (also when it exists); without it a new "
                   "repository gets its owner's default visibility, an existing one keeps its own")
    p.add_argument("--revision", default=None, metavar="BRANCH",
                   help="branch to commit to (created from the default branch if missing)")
    p.add_argument("--gated", default=None, metavar="TEXT",
                   help="gate access (manual approval): TEXT is the terms each user agrees to, "
                   "shown with a short form (name, affiliation, country, intended use)")
    p.add_argument("--public", action="store_true",
                   help="allow a version that is not synthetic to go up without --private or "
                   "--gated (refused by default: it holds patients' images)")
    p.add_argument("--key-file", type=Path, default=None,
                   help="DICOM builds: the pseudonym key prepare used; the identifier index "
                   "scanned against lies beside it")
    p.add_argument("--home", type=Path, default=None,
                   help="dataset home (default: $THYROID_BENCH_HOME, else ~/.cache/thyroid-bench)")
    p.set_defaults(func=_cmd_publish)


def _cmd_publish(args: argparse.Namespace) -> int:
    from thyroid_bench.data.publish import publish_dataset

    result = publish_dataset(args.dataset, args.repo, private=args.private, revision=args.revision,
                             gated=args.gated, key_file=args.key_file, home=args.home,
                             public=args.public,
                             progress=lambda line: print(f"  {line}", flush=True))
    at = f" --revision {result.revision}" if result.revision else ""
    print(f"published {len(result.files)} files to {result.url}"
          + (f" (revision {result.revision})" if result.revision else "")
          + f", fingerprint {result.fingerprint}")
    print(f"get it back with: thyroid-bench prepare --source hub --repo-id {result.repo_id}{at}")
    return 0
