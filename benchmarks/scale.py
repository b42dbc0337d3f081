"""Scale benchmark: wall time and peak memory of each stage against the size of the archive.

Writes the synthetic reference cohort as a DICOM archive (the writer of ``bench_dicom.py``,
:func:`thyroid_bench.testing.dicom_writer.write_archive`) at multiples of Qiao et al.'s Table 1
counts (1x: 3,389 studies), then runs each stage as its own process under ``/usr/bin/time -v``:

* ``prepare``: ``thyroid-bench prepare --source dicom`` (ingestion);
* ``verify``: ``thyroid-bench verify`` on the dataset it wrote;
* ``run``: one training epoch and the evaluation of ``internal`` and ``external``,
  ``thyroid-bench run --model timm:test_resnet --protocol paper --epochs 1 --batch-size 64
  --num-threads 1`` (the issue's command, on one thread);
* ``run --stream``: the same through the streaming input, skipped with a note where
  ``run`` has no ``--stream`` option;
* ``score``: ``thyroid-bench score`` of the run's ``internal`` predictions against the dataset,
  1,000 bootstrap resamples.

Per stage and size it records the wall time and the peak resident set size that
``/usr/bin/time`` reports (the largest single process, as the kernel's ``ru_maxrss`` gives it),
and beside it the peak of the summed RSS of the whole process tree, sampled from ``/proc`` every
0.2 s (an upper bound: pages that worker processes share count once per process).

Run (from the repository root; roughly 5 minutes at 1x and 30 at 10x on 2 cores, most of it
writing the archive, about 40 ms a study)::

    TB_SCALE=1,10 .venv/bin/python benchmarks/scale.py --out benchmarks --benchmarks-md BENCHMARKS.md

``TB_SCALE`` (or ``--scales``) lists the multiples, fractions included (``0.05`` is a
168-study archive, a check in about a minute); ``n + f`` is ``n`` copies of the cohort from
successive generator seeds plus one at fraction ``f``, so 10x holds the 1x archive and nine
others. Archives, datasets and runs go to a temporary folder under ``--work`` (default
``$TB_SCALE_DIR``, else the system's temporary folder), removed at the end unless ``--keep``;
``--archive-cache DIR`` (default ``$TB_SCALE_CACHE``) keeps the copies of the cohort for later runs.
Outputs in ``--out``: ``scale-results.json``, ``scale.md`` (the table) and ``scale.png`` (the
figure); ``--benchmarks-md`` also writes the table between the ``scale:begin`` / ``scale:end``
markers of that file. ``benchmarks/bench_scale.py`` runs the same stages under pytest-benchmark.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

__all__ = [
    "BEFORE", "CACHE_ENV", "DEFAULT_RUN_ARGS", "DEFAULT_SCALES", "GOALS", "STAGES", "Measurement",
    "SizeWork",
    "StageResult", "build_size", "growth", "has_stream_option", "markdown_table", "measure", "parse_scales",
    "parse_time_report", "plot", "run_stage", "scaled_counts", "skip_reason", "studies_at",
    "update_markdown", "write_outputs", "write_scaled_archive",
]

SCALE_ENV = "TB_SCALE"
WORK_ENV = "TB_SCALE_DIR"
CACHE_ENV = "TB_SCALE_CACHE"
DEFAULT_SCALES = (1.0, 10.0)
#: The stages, in the order they run for one size.
STAGES = ("prepare", "verify", "run", "run --stream", "score")
STAGE_LABELS = {
    "prepare": "`prepare --source dicom`",
    "verify": "`verify`",
    "run": "`run`, one epoch (in memory)",
    "run --stream": "`run --stream`, one epoch",
    "score": "`score`, 1,000 bootstrap resamples",
}
DEFAULT_RUN_ARGS = ("--model", "timm:test_resnet", "--protocol", "paper", "--epochs", "1",
                    "--batch-size", "64", "--num-threads", "1", "--seed", "0", "--quiet")
#: Issue 13's measurements before the work (2-core machine, ``/usr/bin/time -v``):
#: stage -> multiple -> (wall s, peak RSS GB). ``run`` was on 2 threads.
BEFORE = {"prepare": {1.0: (6.1, 0.89), 10.0: (58.0, 5.63)},
          "run": {1.0: (27.0, 2.18), 10.0: (136.0, 9.91)}}
#: Issue 13's goals: peak RSS at the largest size over the smallest, at most this.
GOALS = {"prepare": 1.5, "run": 1.5, "run --stream": 1.5}
_TREE_SAMPLE_S = 0.2


# --------------------------------------------------------------------------- sizes and archives

def parse_scales(text: str | None) -> tuple[float, ...]:
    """``"1,10"`` -> ``(1.0, 10.0)``, sorted, each a positive multiple of Table 1's counts."""
    if not text or not text.strip():
        return DEFAULT_SCALES
    try:
        scales = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise SystemExit(f"--scales / ${SCALE_ENV} {text!r}: expected comma-separated numbers, e.g. 1,10")
    if not scales or any(not math.isfinite(s) or s <= 0 for s in scales):
        raise SystemExit(f"--scales / ${SCALE_ENV} {text!r}: every multiple must be a positive number, "
                         f"e.g. 0.05 or 10")
    return tuple(scales)


def scaled_counts(fraction: float) -> dict[str, tuple[int, ...]]:
    """Table 1's counts per split and class times ``fraction`` (at least one per class)."""
    from thyroid_bench.data.synthetic.generator import TABLE1_COUNTS

    return {split: tuple(max(1, round(c * fraction)) for c in counts)
            for split, counts in TABLE1_COUNTS.items()}


def _replicas(scale: float) -> list[tuple[int, dict[str, tuple[int, ...]]]]:
    """(generator seed, counts) per copy of the cohort: whole copies, then the fraction."""
    from thyroid_bench.data.synthetic.generator import OFFICIAL_SEED

    whole = int(scale + 1e-9)
    fraction = scale - whole
    out = [(OFFICIAL_SEED + k, scaled_counts(1.0)) for k in range(whole)]
    if fraction > 1e-9:
        out.append((OFFICIAL_SEED + whole, scaled_counts(fraction)))
    return out


def studies_at(scale: float) -> int:
    """Number of studies in the archive at ``scale`` (3,389 at 1x)."""
    return sum(sum(sum(c) for c in counts.values()) for _seed, counts in _replicas(scale))


def _write_replica(k: int, seed: int, counts: dict[str, tuple[int, ...]], cache: Path,
                   workers: int | None) -> Path:
    """Copy ``k`` of the cohort as DICOM files in ``cache`` (reused when already complete).

    Generated from seed ``seed``, written with writer seed ``k + 1`` (distinct pixels,
    identities and UIDs per copy), files under ``files/<centre>/r<k>/``, labels in ``labels.csv``.
    """
    from thyroid_bench.data.synthetic.generator import TASK, generate_cohort
    from thyroid_bench.testing.dicom_writer import write_archive

    folder = Path(cache) / f"r{k:03d}-seed{seed}-n{sum(sum(c) for c in counts.values())}"
    if (folder / "complete").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    cohort = generate_cohort(seed, counts=counts, progress=False, workers=workers or os.cpu_count() or 1)
    rows = [dict(row, path=f"{row['center']}/r{k:03d}/{i:06d}.dcm", patient=row["patient_id"])
            for i, row in enumerate(r for split in TASK.splits for r in cohort[split])]
    del cohort
    write_archive(folder / "files", rows, seed=k + 1, labels_name="labels.csv", task=TASK)
    (folder / "complete").write_text("")
    return folder


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link every file under ``src`` to the same place under ``dst`` (copy across devices)."""
    for path in sorted(src.rglob("*")):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)


def write_scaled_archive(root: Path, scale: float, workers: int | None = None,
                         cache: Path | None = None) -> Path:
    """Write the archive at ``scale`` under ``root`` and its labels CSV beside it; return the CSV.

    Built one copy of the cohort at a time (so it holds one copy's pixels) in ``cache``
    (default: ``root.parent / "replicas"``), where a later call, at this size or another,
    reuses the copies it finds complete; ``root`` holds hard links to them.
    """
    root = Path(root)
    cache = Path(cache) if cache is not None else root.parent / "replicas"
    labels = root.parent / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        for k, (seed, counts) in enumerate(_replicas(scale)):
            folder = _write_replica(k, seed, counts, cache, workers)
            _link_tree(folder / "files", root)
            with open(folder / "labels.csv", newline="", encoding="utf-8") as src:
                rows = list(csv.reader(src))
            writer.writerows(rows if k == 0 else rows[1:])
    return labels


# --------------------------------------------------------------------------- measuring a process

@dataclass
class Measurement:
    """What one process cost: its exit status, wall time and peak memory."""

    returncode: int
    wall_s: float
    peak_rss_gb: float
    tree_peak_rss_gb: float


def parse_time_report(text: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in GB) from a GNU ``/usr/bin/time -v`` report."""
    wall = re.search(r"Elapsed \(wall clock\) time.*?:\s*(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)\s*$", text, re.M)
    rss = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", text)
    if not wall or not rss:
        raise ValueError(f"not a /usr/bin/time -v report:\n{text[-500:]}")
    hours, minutes, seconds = int(wall.group(1) or 0), int(wall.group(2)), float(wall.group(3))
    return hours * 3600 + minutes * 60 + seconds, int(rss.group(1)) * 1024 / 1e9


def _rss_of_tree(root_pid: int) -> int:
    """Bytes resident, summed over ``root_pid`` and its descendants (from ``/proc``)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        children = [p for p, pp in parents.items() if pp in frontier and p not in tree]
        tree.update(children)
        frontier = children
    total = 0
    for pid in tree:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _sample_tree(proc: subprocess.Popen, peak: list[int]) -> None:
    while proc.poll() is None:
        peak[0] = max(peak[0], _rss_of_tree(proc.pid))
        time.sleep(_TREE_SAMPLE_S)


def measure(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Measurement:
    """Run ``argv`` under ``/usr/bin/time -v`` (its output to ``log``) and measure it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    report = log.with_suffix(".time")
    peak = [0]
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(report), *argv],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler = threading.Thread(target=_sample_tree, args=(proc, peak), daemon=True)
        sampler.start()
        proc.wait()
        sampler.join()
    wall, rss = parse_time_report(report.read_text(encoding="utf-8"))
    return Measurement(proc.returncode, wall, rss, max(rss, peak[0] / 1e9))


# --------------------------------------------------------------------------- the stages

def _thyroid_bench() -> list[str]:
    """The CLI of the Python running this script (its console script, else ``-m``)."""
    script = Path(sys.executable).with_name("thyroid-bench")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "thyroid_bench.cli"]


def has_stream_option() -> bool:
    """Whether ``thyroid-bench run`` has the ``--stream`` option."""
    help_text = subprocess.run([*_thyroid_bench(), "run", "--help"], capture_output=True, text=True).stdout
    return bool(re.search(r"(^|\s)--stream\b", help_text))


@dataclass
class SizeWork:
    """One size's folder: archive, labels, key, dataset home, runs, logs."""

    scale: float
    root: Path
    studies: int = 0
    run_args: tuple[str, ...] = DEFAULT_RUN_ARGS
    workers: int | None = None
    #: The stages run so far at this size, by name.
    done: dict[str, "StageResult"] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "scale-x" + f"{self.scale:g}".replace(".", "p")

    @property
    def dataset(self) -> str:
        return f"{self.name}@1.0.0"

    def env(self) -> dict[str, str]:
        return {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
                "THYROID_BENCH_HOME": str(self.root / "home")}


def _argv(stage: str, w: SizeWork) -> list[str]:
    home = ["--home", str(w.root / "home")]
    if stage == "prepare":
        workers = ["--workers", str(w.workers)] if w.workers else []
        return ["prepare", "--source", "dicom", "--dicom-dir", str(w.root / "archive"),
                "--labels", str(w.root / "labels.csv"), "--name", w.name, "--version", "1.0.0",
                "--key-file", str(w.root / "key"), "--external-center", "center2", "--force",
                *workers, *home]
    if stage == "verify":
        return ["verify", w.dataset, *home]
    if stage in ("run", "run --stream"):
        out = w.root / ("run-stream" if stage == "run --stream" else "run")
        stream = ["--stream"] if stage == "run --stream" else []
        return ["run", *w.run_args, *stream, "--dataset", w.dataset, "--out", str(out), *home]
    if stage == "score":
        return ["score", str(w.root / "run" / "predictions" / "internal.csv"), "--split", "internal",
                "--dataset", w.dataset, "--bootstrap", "1000", "--no-figures",
                "--json", str(w.root / "score.json"), *home]
    raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")


@dataclass
class StageResult:
    """One stage at one size: measured, failed (``returncode`` != 0) or skipped (``note``)."""

    stage: str
    scale: float
    studies: int
    command: str
    returncode: int | None = None
    wall_s: float | None = None
    peak_rss_gb: float | None = None
    tree_peak_rss_gb: float | None = None
    note: str = ""
    log_tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def skip_reason(stage: str, w: SizeWork, stream: bool) -> str:
    """Why ``stage`` cannot run at ``w``'s size ("" when it can)."""
    needs = {"verify": "prepare", "run": "prepare", "run --stream": "prepare", "score": "run"}
    if stage == "run --stream" and not stream:
        return "skipped: this thyroid-bench has no `run --stream` option"
    if stage in needs and not (needs[stage] in w.done and w.done[needs[stage]].ok):
        return f"skipped: `{needs[stage]}` did not succeed"
    return ""


def run_stage(stage: str, w: SizeWork, stream: bool) -> StageResult:
    """Measure ``stage`` at ``w``'s size (or skip it, saying why)."""
    argv = [*_thyroid_bench(), *_argv(stage, w)]
    result = StageResult(stage, w.scale, w.studies, shlex.join(["thyroid-bench", *_argv(stage, w)]))
    result.note = skip_reason(stage, w, stream)
    if not result.note:
        log = w.root / "logs" / f"{stage.replace(' --', '-')}.log"
        m = measure(argv, log, w.env())
        result.returncode, result.wall_s = m.returncode, m.wall_s
        result.peak_rss_gb, result.tree_peak_rss_gb = m.peak_rss_gb, m.tree_peak_rss_gb
        if m.returncode:
            result.log_tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
            result.note = f"failed with exit status {m.returncode}"
    w.done[stage] = result
    return result


def build_size(scale: float, root: Path, workers: int | None = None,
               run_args: tuple[str, ...] = DEFAULT_RUN_ARGS, cache: Path | None = None) -> SizeWork:
    """Write the archive at ``scale`` under ``root`` (copies of the cohort kept in ``cache``,
    see :func:`write_scaled_archive`) and return the size's work folder."""
    w = SizeWork(scale=scale, root=Path(root), run_args=run_args, workers=workers)
    w.root.mkdir(parents=True, exist_ok=True)
    write_scaled_archive(w.root / "archive", scale, workers, cache)
    w.studies = studies_at(scale)
    return w


# --------------------------------------------------------------------------- reporting

def _gb(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} GB"


def _cell(r: StageResult | None) -> str:
    if r is None:
        return "-"
    if not r.ok:
        return "skipped" if r.note.startswith("skipped") else f"failed ({r.returncode})"
    return f"{r.wall_s:.1f} s / {_gb(r.peak_rss_gb)} / {_gb(r.tree_peak_rss_gb)}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or a <= 0 else b / a


def growth(results: list[StageResult]) -> dict[str, dict[str, object]]:
    """Per stage: the largest size's figures over the smallest's (``None`` where either is
    missing), and whether the peak RSS ratio meets issue 13's goal (``None``: no goal or no ratio)."""
    scales = sorted({r.scale for r in results})
    by = {(r.stage, r.scale): r for r in results}
    out: dict[str, dict[str, object]] = {}
    for stage in dict.fromkeys(r.stage for r in results):
        small, large = by.get((stage, scales[0])), by.get((stage, scales[-1]))
        ok = small is not None and large is not None and small.ok and large.ok
        ratios = {k: _ratio(getattr(small, k), getattr(large, k)) if ok else None
                  for k in ("wall_s", "peak_rss_gb", "tree_peak_rss_gb")}
        goal, rss = GOALS.get(stage), ratios["peak_rss_gb"]
        out[stage] = {**ratios, "goal": goal, "met": None if goal is None or rss is None else rss <= goal}
    return out


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _growth_cells(g: dict[str, object]) -> list[str]:
    rss = _x(g["peak_rss_gb"]) + ("" if g["tree_peak_rss_gb"] is None else f" ({_x(g['tree_peak_rss_gb'])})")
    met = {None: "?", True: "met", False: "not met"}[g["met"]]
    return [_x(g["wall_s"]), rss, "-" if g["goal"] is None else f"<= {g['goal']:g}x: {met}"]


def markdown_table(results: list[StageResult]) -> str:
    """Stage x size: wall / peak RSS / peak RSS of all processes, and the largest/smallest ratios."""
    scales = sorted({r.scale for r in results})
    by = {(r.stage, r.scale): r for r in results}
    studies = {r.scale: r.studies for r in results}
    ratio = f"{scales[-1]:g}x / {scales[0]:g}x"
    compare = len(scales) > 1  # one size: no ratio columns
    head = ["stage", *(f"{studies[s]:,} studies ({s:g}x)" for s in scales),
            *([f"{ratio}: wall", f"{ratio}: peak RSS", "goal (peak RSS)"] if compare else [])]
    lines = ["| " + " | ".join(head) + " |",
             "| --- | " + " | ".join(["---"] * len(scales)) + (" | ---: | ---: | --- |" if compare else " |")]
    for stage, g in sorted(growth(results).items(), key=lambda kv: STAGES.index(kv[0])):
        cells = [STAGE_LABELS[stage], *(_cell(by.get((stage, s))) for s in scales),
                 *(_growth_cells(g) if compare else [])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: list[StageResult], path: Path) -> Path:
    """Peak RSS and wall time against the number of studies, one line per stage, beside
    issue 13's measurements before the work (dashed); log-log axes, so slope 1 is linear growth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = dict(zip(STAGES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for stage in STAGES:
        done = sorted((r for r in results if r.stage == stage and r.ok), key=lambda r: r.studies)
        for ax, key in zip(axes, ("peak_rss_gb", "wall_s")):
            if done:
                ax.plot([r.studies for r in done], [getattr(r, key) for r in done], "o-",
                        color=colours[stage], label=stage)
            if stage in BEFORE:
                xs = [studies_at(s) for s in BEFORE[stage]]
                ys = [v[1] if key == "peak_rss_gb" else v[0] for v in BEFORE[stage].values()]
                ax.plot(xs, ys, "o--", mfc="none", color=colours[stage], alpha=0.6,
                        label=f"{stage}, before (issue 13)")
    plain = FuncFormatter(lambda v, _: f"{v:,g}")
    twos_fives = FuncFormatter(lambda v, _: f"{v:,g}" if f"{v:.0e}"[0] in "25" else "")
    for ax, ylabel in zip(axes, ("peak RSS, largest process (GB)", "wall time (s)")):
        ax.set(xscale="log", yscale="log", xlabel="studies in the archive", ylabel=ylabel)
        ax.grid(True, which="both", alpha=0.3)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(twos_fives)
    axes[0].legend(fontsize=8)
    fig.suptitle("thyroid-bench at scale: each stage as its own process (/usr/bin/time -v)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _machine() -> dict[str, object]:
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent).stdout.strip()
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
            "cpus": os.cpu_count(), "memory_gb": round(int(mem.group(1)) / 1e6, 1) if mem else None,
            "python": platform.python_version(), "platform": platform.platform()}


_MARKERS = re.compile(r"(<!-- scale:begin -->\n).*?(<!-- scale:end -->)", re.S)


def _check_markers(path: Path) -> str:
    """``path``'s text, or exit naming what it lacks."""
    doc = Path(path).read_text(encoding="utf-8")
    if not _MARKERS.search(doc):
        raise SystemExit(f"{path}: no '<!-- scale:begin -->' ... '<!-- scale:end -->' lines to write "
                         f"the table between; add them, or leave out --benchmarks-md")
    return doc


def update_markdown(path: Path, text: str) -> None:
    """Replace what lies between ``<!-- scale:begin -->`` and ``<!-- scale:end -->`` in ``path``."""
    doc = _check_markers(path)
    new = _MARKERS.sub(lambda m: m.group(1) + text.rstrip("\n") + "\n" + m.group(2), doc)
    Path(path).write_text(new, encoding="utf-8")


def write_outputs(results: list[StageResult], out: Path, benchmarks_md: Path | None) -> str:
    """Write ``scale-results.json``, ``scale.md`` and ``scale.png`` to ``out``; return the table."""
    out.mkdir(parents=True, exist_ok=True)
    machine = _machine()
    (out / "scale-results.json").write_text(json.dumps(
        {"machine": machine, "results": [asdict(r) for r in results], "growth": growth(results),
         "before_issue_13": {stage: {f"{scale:g}x": {"wall_s": v[0], "peak_rss_gb": v[1]}
                                     for scale, v in d.items()} for stage, d in BEFORE.items()}},
        indent=2) + "\n")
    table = markdown_table(results)
    notes = list(dict.fromkeys(
        f"- `{r.stage}`" + ("" if r.note.startswith("skipped") else f" at {r.scale:g}x") + f": {r.note}"
        for r in results if r.note))
    text = (f"Measured {machine['date']}, commit `{machine['commit']}`, {machine['cpus']} cores, "
            f"{machine['memory_gb']} GB. Cells: wall / peak RSS of the largest process "
            f"(`/usr/bin/time -v`) / peak RSS summed over all processes (sampled every "
            f"{_TREE_SAMPLE_S:g} s); ratio columns: largest process (all processes).\n\n{table}\n"
            + ("\n" + "\n".join(notes) + "\n" if notes else ""))
    (out / "scale.md").write_text(text, encoding="utf-8")
    plot(results, out / "scale.png")
    if benchmarks_md is not None:
        update_markdown(benchmarks_md, text)
    return text


# --------------------------------------------------------------------------- command line

def measure_size(scale: float, base: Path, args: argparse.Namespace, stream: bool) -> list[StageResult]:
    """Build the archive at ``scale`` in ``base``, run every stage on it, remove it unless ``--keep``."""
    t0 = time.perf_counter()
    w = build_size(scale, base / f"x{scale:g}", args.workers, tuple(shlex.split(args.run_args)),
                   args.archive_cache or base / "replicas")
    print(f"[scale] {scale:g}x: archive of {w.studies:,} studies ready in {time.perf_counter() - t0:.0f} s",
          flush=True)
    for stage in STAGES:
        r = run_stage(stage, w, stream)
        figures = r.note if not r.ok else (f"{r.wall_s:7.1f} s  peak RSS {r.peak_rss_gb:.2f} GB "
                                           f"(all processes {r.tree_peak_rss_gb:.2f} GB)")
        print(f"[scale] {scale:g}x {stage:13s} {figures}", flush=True)
        for line in r.log_tail:
            print(f"    {line}")
    if not args.keep:
        shutil.rmtree(w.root, ignore_errors=True)
    return list(w.done.values())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scales", default=os.environ.get(SCALE_ENV),
                   help=f"comma-separated multiples of Table 1's counts (default: ${SCALE_ENV}, else 1,10)")
    p.add_argument("--work", type=Path, default=os.environ.get(WORK_ENV) or None,
                   help=f"where the temporary folder goes (default: ${WORK_ENV}, else the system's)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                   help="folder for scale-results.json, scale.md, scale.png (default: benchmarks/)")
    p.add_argument("--benchmarks-md", type=Path, default=None,
                   help="also write the table between the scale:begin/end markers of this file")
    p.add_argument("--archive-cache", type=Path, default=os.environ.get(CACHE_ENV) or None,
                   help=f"keep the generated copies of the cohort here and reuse them in later runs "
                        f"(default: ${CACHE_ENV}, else inside the temporary folder)")
    p.add_argument("--workers", type=int, default=None, help="prepare --workers (default: all cores)")
    p.add_argument("--run-args", default=shlex.join(DEFAULT_RUN_ARGS),
                   help="arguments of the training stage's `thyroid-bench run` (default: %(default)s)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (archives, datasets, runs)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scales = parse_scales(args.scales)
    if args.benchmarks_md is not None:
        _check_markers(args.benchmarks_md)
    if not Path("/usr/bin/time").is_file():
        raise SystemExit("/usr/bin/time not found: install GNU time (Debian/Ubuntu: apt-get install time)")
    stream = has_stream_option()
    if not stream:
        print("[scale] note: `thyroid-bench run` has no --stream option; that stage is skipped", flush=True)
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="tb-scale-", dir=args.work))
    try:
        results = [r for scale in scales for r in measure_size(scale, base, args, stream)]
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(write_outputs(results, args.out, args.benchmarks_md))
    written = ", ".join(str(args.out / f) for f in ("scale-results.json", "scale.md", "scale.png"))
    print(f"[scale] wrote {written}" + (f"; kept {base}" if args.keep else ""))
    return 1 if any(r.returncode not in (None, 0) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
