"""Ingestion (`prepare --source dicom`) of this checkout against another version's, same machine.

Runs the scale benchmark's prepare stage (benchmarks/scale.py: the same archives, command and
`/usr/bin/time -v` measure) at each size, alternating the other version's code and this one's
twice, so a busy machine slows both alike. OTHER is a folder holding that version's
``thyroid_bench`` package, put first on PYTHONPATH for its runs, e.g. the code before issue 13:

    mkdir -p /tmp/old && git archive b23c479 thyroid_bench | tar -x -C /tmp/old
    .venv/bin/python benchmarks/prepare_versus.py /tmp/old --scales 1,10 --archive-cache /tmp/scale-cache
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import build_size, parse_scales, run_stage  # noqa: E402

HERE = str(Path(__file__).resolve().parents[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", type=Path, help="folder holding the other version's thyroid_bench package")
    ap.add_argument("--scales", default="1,10")
    ap.add_argument("--archive-cache", type=Path, default=None)
    args = ap.parse_args()
    if not (args.other / "thyroid_bench" / "__init__.py").is_file():
        raise SystemExit(f"{args.other}: no thyroid_bench package in it")
    with tempfile.TemporaryDirectory(prefix="tb-versus-") as tmp:
        for scale in parse_scales(args.scales):
            w = build_size(scale, Path(tmp) / f"x{scale:g}", cache=args.archive_cache)
            for label, path in (("other", args.other), ("this", HERE)) * 2:
                os.environ["PYTHONPATH"] = str(path)
                r = run_stage("prepare", w, False)
                print(f"{scale:g}x ({w.studies:,} studies) {label}: {r.wall_s:.1f} s, "
                      f"peak RSS {r.peak_rss_gb:.2f} GB{' ' + r.note if r.note else ''}", flush=True)


if __name__ == "__main__":
    main()
