"""Human-readable results: the paper's Table 2 layout, ROC and confusion-matrix figures, report.md.

Figures follow Qiao et al. 2021 (BMC Medical Imaging, doi 10.1186/s12880-021-00710-4):
Fig. 3, one-vs-rest ROC curves per class with the AUC in the legend; Fig. 4, the 4x4
confusion matrix with counts (here also row percentages, i.e. per-true-class recall).
Rendering uses matplotlib's object API with the Agg canvas only, so it runs headless
and never touches pyplot's global state. Inputs are the results of the task's metric suite
(:func:`thyroid_bench.evaluation.suites.evaluate_task`); fractions become percentages
here, on display only.

What a report shows follows the task's metric suite (:data:`SUITE_REPORTS`): the
``multiclass`` suite (four-pattern) gets Table 2 and per-class ROC curves; the ``ordinal``
suite (residual-tissue) gets a detection table (P(present) = 1 - P(absent)), a grade table
with the confusion matrix, the uptake figures when uptake was predicted, and the ROC curve
of detection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thyroid_bench.tasks import Task

__all__ = [
    "TABLE2_ROWS",
    "DETECTION_ROWS",
    "GRADE_ROWS",
    "UPTAKE_ROWS",
    "format_table2",
    "format_gap",
    "format_detection_table",
    "format_grade_table",
    "format_uptake_table",
    "format_ordinal",
    "format_ordinal_gap",
    "format_tables",
    "plot_roc",
    "plot_detection_roc",
    "plot_confusion",
    "SuiteReport",
    "SUITE_REPORTS",
    "write_report",
]

#: (label, per-class key) rows of the paper's Table 2, in its order.
TABLE2_ROWS: tuple[tuple[str, str], ...] = (
    ("Accuracy", "accuracy"),
    ("Sensitivity", "sensitivity"),
    ("Specificity", "specificity"),
    ("PPV", "ppv"),
    ("NPV", "npv"),
    ("F1", "f1"),
    ("AUC", "auc"),
)
# (label, key, shown as a percentage?) of the overall lines under the table.
_OVERALL_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("Overall accuracy", "accuracy", True),
    ("Balanced accuracy", "balanced_accuracy", True),
    ("Macro F1", "macro_f1", True),
    ("Macro AUC", "macro_auc", True),
    ("Cohen's kappa", "cohen_kappa", False),
    ("MCC", "mcc", False),
    ("ECE", "ece", False),
    ("Brier score", "brier", False),
)
#: (label, key, shown as a percentage?) rows of the detection table (ordinal suite).
DETECTION_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("Sensitivity", "detection_sensitivity", True),
    ("Specificity", "detection_specificity", True),
    ("PPV", "detection_ppv", True),
    ("NPV", "detection_npv", True),
    ("Balanced accuracy", "detection_balanced_accuracy", True),
    ("F1", "detection_f1", True),
    ("AUC", "detection_auc", True),
    ("Accuracy", "detection_accuracy", True),
)
#: Rows of the grade table (ordinal suite).
GRADE_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("Accuracy", "accuracy", True),
    ("Quadratic-weighted kappa", "quadratic_kappa", False),
    ("MAE (grades)", "grade_mae", False),
)
#: Rows of the uptake table (ordinal suite, when uptake was predicted).
UPTAKE_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("MAE (percentage points)", "uptake_mae", False),
    ("Spearman correlation", "uptake_spearman", False),
)
_NA = "n/a"


# --------------------------------------------------------------------------- tables
def _paper_type(name: str, task: Task | None) -> str | None:
    """The paper's code of class ``name`` in ``task`` (e.g. ``III``), if it has one."""
    if task is None:
        return None
    return next((c.code for c in task.classes if c.name == name), None)


def _class_header(name: str, support: int, task: Task | None) -> tuple[str, str]:
    code = None
    if task is not None and name in task.class_names:
        code = task.class_code(task.class_names.index(name))  # "type III", "grade 2"
    return name, (f"{code}, n={support}" if code else f"n={support}")


def _fmt(value: float | None, interval: Sequence[float] | None, percent: bool) -> str:
    """A figure with its interval: ``80.0 (71.2-88.1)``; ``-0.143 (-0.537 to 0.372)`` when a
    bound is negative (a kappa, MCC), where a hyphen would read as a minus sign."""
    if value is None:
        return _NA
    scale, digits = (100, 1) if percent else (1, 3)
    text = f"{scale * value:.{digits}f}"
    if interval:
        lo, hi = (f"{scale * b:.{digits}f}" for b in interval)
        sep = " to " if lo.startswith("-") or hi.startswith("-") else "-"
        text += f" ({lo}{sep}{hi})"
    return text


def _table(header: list[str], rows: list[list[str]], markdown: bool, sub: list[str] | None = None) -> str:
    if markdown:
        head = header if sub is None else [f"{h} ({s})" if s else h for h, s in zip(header, sub)]
        lines = ["| " + " | ".join(head) + " |",
                 "| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    grid = [header] + ([sub] if sub else []) + rows
    widths = [max(len(r[j]) for r in grid) for j in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))

    out = [line(header)] + ([line(sub)] if sub else [])
    out.append("  ".join("-" * w for w in widths))
    out += [line(r) for r in rows]
    return "\n".join(x.rstrip() for x in out)


def _ci_note(metrics: Mapping) -> str:
    b = metrics.get("bootstrap") or {}
    if not b.get("resamples"):
        return "no confidence intervals (bootstrap off)"
    return (f"{100 * b['level']:.0f}% CIs: percentile, {b['resamples']} bootstrap resamples "
            f"stratified {b.get('stratified') or 'by true class'}, seed {b['seed']}")


def format_table2(metrics: Mapping, *, task: Task | None = None, markdown: bool = False) -> str:
    """The paper's Table 2 layout: metric rows, class columns, percentages with CIs.

    Per-class rows (accuracy one-vs-rest, sensitivity, specificity, PPV, NPV, F1, AUC)
    are followed by the overall figures (accuracy, balanced accuracy, macro F1 and AUC
    as percentages; kappa, MCC, ECE, Brier as fractions). ``metrics`` is an
    :func:`~thyroid_bench.evaluation.metrics.evaluate` result; ``markdown=True`` renders markdown
    tables instead of aligned plain text; ``task`` adds the paper's class codes to the
    headers. Undefined figures show as ``n/a``.
    """
    ci = metrics.get("ci") or {}
    per = metrics["per_class"]
    names = list(per)
    heads = [_class_header(n, per[n]["support"], task) for n in names]
    rows = [[label] + [_fmt(per[n][key], ci.get(f"per_class.{n}.{key}"), True) for n in names]
            for label, key in TABLE2_ROWS]
    per_class = _table(["% (95% CI)"] + [h[0] for h in heads], rows, markdown,
                       sub=[""] + [h[1] for h in heads])
    overall_rows = []
    for label, key, percent in _OVERALL_ROWS:
        if key == "ece" and metrics.get("ece_bins"):
            label = f"ECE ({metrics['ece_bins']} bins)"
        overall_rows.append([f"{label} (%)" if percent else label,
                             _fmt(metrics.get(key), ci.get(key), percent)])
    overall = _table([f"Overall (n={metrics['n']})", "value (95% CI)"], overall_rows, markdown)
    note = _ci_note(metrics)
    if markdown:
        return f"{per_class}\n\n{overall}\n\n_{note}._"
    return f"{per_class}\n\n{overall}\n\n{note}"


def format_gap(gap: Mapping, *, markdown: bool = True) -> str:
    """Render a :func:`thyroid_bench.evaluation.metrics.gap` result: internal minus external, in points."""
    names = list(gap["per_class"])
    rows = [[label] + [_fmt_points(gap["per_class"][n][key]) for n in names] for label, key in TABLE2_ROWS]
    table = _table(["internal - external (points)"] + names, rows, markdown)
    overall = [[label, _fmt_points(gap.get(key)) if percent else _fmt_signed(gap.get(key))]
               for label, key, percent in _OVERALL_ROWS]
    return table + "\n\n" + _table(["Overall", "internal - external"], overall, markdown)


def _fmt_points(v: float | None) -> str:
    return _NA if v is None else f"{100 * v:+.1f}"


def _fmt_signed(v: float | None) -> str:
    return _NA if v is None else f"{v:+.3f}"


def _figure_rows(metrics: Mapping, rows: Sequence[tuple[str, str, bool]]) -> list[list[str]]:
    ci = metrics.get("ci") or {}
    return [[f"{label} (%)" if percent else label, _fmt(metrics.get(key), ci.get(key), percent)]
            for label, key, percent in rows]


def format_detection_table(metrics: Mapping, *, task: Task | None = None,
                           markdown: bool = False) -> str:
    """The detection reading of an ordinal result: sensitivity, specificity, PPV, NPV,
    balanced accuracy, F1, AUC (of P(present)) and accuracy with CIs, and the 2 x 2 counts."""
    support = metrics.get("detection_support") or {}
    negative = task.detection.negative if task is not None and task.detection else "absent"
    n_present, n_absent = support.get("present", 0), support.get("absent", 0)
    lead = (f"Detection: present = not {negative}, called when P(present) = 1 - P({negative}) "
            f">= {metrics.get('detection_threshold', 0.5):g}.")
    table = lead + "\n\n" + _table([f"Detection (n={n_present + n_absent}: {n_present} present, "
                                    f"{n_absent} {negative})", "value (95% CI)"],
                                   _figure_rows(metrics, DETECTION_ROWS), markdown)
    cm = metrics.get("detection_confusion_matrix")
    if cm:
        counts = _table(["true \u2193 called \u2192", "absent", "present"],
                        [["absent", str(cm[0][0]), str(cm[0][1])],
                         ["present", str(cm[1][0]), str(cm[1][1])]], markdown)
        table += "\n\n" + counts
    return table


def format_grade_table(metrics: Mapping, *, task: Task | None = None, markdown: bool = False) -> str:
    """The grade reading of an ordinal result: accuracy, quadratic-weighted kappa, MAE in
    grades (with CIs) and the k x k confusion matrix (rows: true grade, columns: predicted);
    a sentence instead when some grades are unknown (presence-only labels)."""
    if not metrics.get("grades_known", True) or metrics.get("confusion_matrix") is None:
        return ("Grades: not known for every case (presence-only labels), so no grade figures "
                "are computed.")
    names = list(metrics.get("class_names") or metrics["per_class"])
    table = _table([f"Grade (n={metrics['n']})", "value (95% CI)"],
                   _figure_rows(metrics, GRADE_ROWS), markdown)
    cm = metrics["confusion_matrix"]
    matrix = _table(["true \u2193 predicted \u2192", *names],
                    [[name, *(str(v) for v in row)] for name, row in zip(names, cm)], markdown)
    return f"{table}\n\n{matrix}"


def format_uptake_table(metrics: Mapping, *, markdown: bool = False) -> str:
    """Uptake MAE and Spearman correlation (with CIs) when uptake was predicted, else ``""``."""
    n = metrics.get("uptake_n") or 0
    if not n:
        return ""
    return _table([f"Uptake (n={n} with true and predicted uptake)", "value (95% CI)"],
                  _figure_rows(metrics, UPTAKE_ROWS), markdown)


def format_ordinal(metrics: Mapping, *, task: Task | None = None, markdown: bool = False) -> str:
    """Detection table, grade table and (when predicted) uptake table of an ordinal result."""
    parts = [format_detection_table(metrics, task=task, markdown=markdown),
             format_grade_table(metrics, task=task, markdown=markdown),
             format_uptake_table(metrics, markdown=markdown)]
    note = _ci_note(metrics)
    parts.append(f"_{note}._" if markdown else note)
    return "\n\n".join(p for p in parts if p)


def format_ordinal_gap(internal: Mapping, external: Mapping, *, markdown: bool = True) -> str:
    """Internal minus external of the detection and grade figures (percentages as points)."""
    rows = []
    for group, spec in (("Detection", DETECTION_ROWS), ("Grade", GRADE_ROWS)):
        for label, key, percent in spec:
            a, b = internal.get(key), external.get(key)
            d = None if a is None or b is None else a - b
            rows.append([f"{group}: {label}", _fmt_points(d) if percent else _fmt_signed(d)])
    return _table(["Figure", "internal - external"], rows, markdown)


def format_tables(metrics: Mapping, *, task: Task, markdown: bool = False) -> str:
    """The tables of one split's result, as the task's metric suite lays them out."""
    return suite_report(task).tables(metrics, task=task, markdown=markdown)


# --------------------------------------------------------------------------- figures
def _short_label(name: str, task: Task | None) -> str:
    t = _paper_type(name, task)
    return f"{t}: {name}" if t else name


def plot_roc(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    path: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    metrics: Mapping | None = None,
    task: Task | None = None,
) -> Path:
    """One-vs-rest ROC curve per class (paper's Fig. 3), AUC (and its CI) in the legend; PNG."""
    from matplotlib.figure import Figure
    from sklearn.metrics import auc, roc_curve

    y = np.asarray(y_true)
    p = np.asarray(y_prob, dtype=np.float64)
    names = list(class_names) if class_names is not None else (
        list(metrics["per_class"]) if metrics else _default_names(p.shape[1], task))
    ci = (metrics or {}).get("ci") or {}
    fig = Figure(figsize=(6.0, 5.6), dpi=120, layout="constrained")
    ax = fig.subplots()
    for c, name in enumerate(names):
        positives = int((y == c).sum())
        if positives == 0 or positives == len(y):
            ax.plot([], [], label=f"{_short_label(name, task)}: AUC undefined (n={positives})")
            continue
        fpr, tpr, _ = roc_curve((y == c).astype(int), p[:, c])
        label = f"{_short_label(name, task)}: AUC {auc(fpr, tpr):.3f}"
        interval = ci.get(f"per_class.{name}.auc")
        if interval:
            label += f" ({interval[0]:.3f}-{interval[1]:.3f})"
        ax.plot(fpr, tpr, lw=1.8, label=label)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="1 - specificity (false positive rate)",
           ylabel="Sensitivity (true positive rate)", title=title or "ROC curves, one vs rest")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7.5)
    return _save(fig, path)


def plot_detection_roc(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    path: str | Path,
    *,
    negative_index: int,
    title: str | None = None,
    metrics: Mapping | None = None,
) -> Path:
    """The ROC curve of detection: truth present = label other than ``negative_index``
    (label -1, present of unknown grade, included), score P(present) = 1 - p[negative_index];
    AUC (and its CI) in the legend, the operating point at the suite's threshold marked; PNG."""
    from matplotlib.figure import Figure
    from sklearn.metrics import auc, roc_curve

    present = (np.asarray(y_true) != negative_index).astype(int)
    score = 1.0 - np.asarray(y_prob, dtype=np.float64)[:, negative_index]
    m = metrics or {}
    fig = Figure(figsize=(6.0, 5.6), dpi=120, layout="constrained")
    ax = fig.subplots()
    positives = int(present.sum())
    if positives in (0, len(present)):
        ax.plot([], [], label=f"present: AUC undefined (n present={positives})")
    else:
        fpr, tpr, _ = roc_curve(present, score)
        label = f"P(present): AUC {auc(fpr, tpr):.3f}"
        interval = (m.get("ci") or {}).get("detection_auc")
        if interval:
            label += f" ({interval[0]:.3f}-{interval[1]:.3f})"
        ax.plot(fpr, tpr, lw=1.8, label=label)
    sens, spec = m.get("detection_sensitivity"), m.get("detection_specificity")
    if sens is not None and spec is not None:
        ax.plot([1 - spec], [sens], "o", color="black",
                label=f"called at P(present) >= {m.get('detection_threshold', 0.5):g}: "
                      f"sens {100 * sens:.1f}%, spec {100 * spec:.1f}%")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="1 - specificity (false positive rate)",
           ylabel="Sensitivity (true positive rate)", title=title or "ROC curve, detection")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7.5)
    return _save(fig, path)


def plot_confusion(
    confusion: Sequence[Sequence[int]] | np.ndarray,
    path: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    task: Task | None = None,
) -> Path:
    """The k x k confusion matrix (paper's Fig. 4): counts and row percentages; PNG.

    Rows are the true class, columns the predicted class; colour is the row percentage.
    """
    from matplotlib.figure import Figure

    cm = np.asarray(confusion, dtype=np.int64)
    k = cm.shape[0]
    names = list(class_names) if class_names is not None else _default_names(k, task)
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(100.0 * cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    fig = Figure(figsize=(6.8, 5.6), dpi=120, layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    for i in range(k):
        for j in range(k):
            text = f"{cm[i, j]}\n({pct[i, j]:.1f}%)" if rows[i, 0] else f"{cm[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9,
                    color="white" if pct[i, j] > 60 else "black")
    labels = [_short_label(n, task).replace("_", " ") for n in names]
    ax.set_xticks(range(k), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    ax.set(xlabel="Predicted class", ylabel="True class", title=title or "Confusion matrix")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of true class")
    return _save(fig, path)


def _default_names(k: int, task: Task | None) -> list[str]:
    if task is not None and task.num_classes == k:
        return list(task.class_names)
    return [f"class_{i}" for i in range(k)]


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight", pad_inches=0.1)
    return path


def _slug(split: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", split).strip("-") or "split"


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class SuiteReport:
    """How a report lays out one metric suite's results.

    ``tables(metrics, task=, markdown=)``: a split's tables; ``roc(y, p, path, task=,
    metrics=, split=)``: its ROC figure; ``gap(internal, external)``: the internal-to-external
    table; ``intro``: the sentence under the title; ``gap_note``: the text above the gap.
    """

    tables: Callable[..., str]
    roc: Callable[..., Path]
    roc_title: str
    gap: Callable[[Mapping, Mapping], str]
    intro: str
    gap_note: str


def _class_roc(y: np.ndarray, p: np.ndarray, path: Path, *, task: Task, metrics: Mapping,
               split: str) -> Path:
    return plot_roc(y, p, path, class_names=list(metrics["per_class"]), title=f"ROC curves, {split}",
                    metrics=metrics, task=task)


def _detection_roc(y: np.ndarray, p: np.ndarray, path: Path, *, task: Task, metrics: Mapping,
                   split: str) -> Path:
    negative = task.negative_index if task.negative_index is not None else 0
    return plot_detection_roc(y, p, path, negative_index=negative,
                              title=f"ROC curve of detection, {split}", metrics=metrics)


def _multiclass_gap(internal: Mapping, external: Mapping) -> str:
    from thyroid_bench.evaluation.metrics import gap

    return format_gap(gap(internal, external))


#: The report layout of each metric suite; a suite not listed is laid out as ``multiclass``.
SUITE_REPORTS: dict[str, SuiteReport] = {
    "multiclass": SuiteReport(
        tables=format_table2, roc=_class_roc, roc_title="ROC curves", gap=_multiclass_gap,
        intro="Fractions are shown as percentages; per-class figures are one-vs-rest.",
        gap_note="Internal minus external, in percentage points (kappa, MCC, ECE, Brier as "
                 "fractions). Positive means the model does worse on the external centre, "
                 "except for ECE and Brier, where lower is better."),
    "ordinal": SuiteReport(
        tables=format_ordinal, roc=_detection_roc, roc_title="ROC curve of detection",
        gap=format_ordinal_gap,
        intro="Fractions are shown as percentages. Detection: a case is present when its grade "
              "is not the negative class (a label of unknown grade counts as present), "
              "P(present) = 1 - P(negative), called present at the threshold shown.",
        gap_note="Internal minus external, in percentage points (kappa and MAE as fractions "
                 "and grades). Positive means the model does worse on the external centre, "
                 "except for the MAE, where lower is better."),
}


def suite_report(task: Task) -> SuiteReport:
    """The report layout of ``task``'s metric suite."""
    return SUITE_REPORTS.get(task.metric_suite, SUITE_REPORTS["multiclass"])


def write_report(
    out_dir: str | Path,
    task: Task,
    metrics_by_split: Mapping[str, Mapping],
    predictions_by_split: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str,
    extra_sections: Mapping[str, str] | None = None,
) -> Path:
    """Write ``report.md`` and its figures (``figures/roc_<split>.png``,
    ``figures/confusion_<split>.png``) into ``out_dir``; return the report's path.

    ``task`` names the classes (with the paper's codes) and its metric suite chooses the
    layout (:data:`SUITE_REPORTS`); ``metrics_by_split`` maps a split name to its
    :func:`~thyroid_bench.evaluation.suites.evaluate_task` result; ``predictions_by_split``
    maps a split to ``(y_true, y_prob)`` for its ROC curves (a split without predictions
    gets no ROC figure). A confusion-matrix figure is drawn where the result has a confusion
    matrix. With both ``internal`` and ``external`` present, the internal-to-external gap is
    added. ``extra_sections`` maps a heading to a markdown body appended at the end (e.g. a
    run's configuration).
    """
    from thyroid_bench.version import __version__

    layout = suite_report(task)
    out = Path(out_dir)
    parts = [f"# {title}", "",
             f"Generated by thyroid-bench {__version__}. {layout.intro} Task `{task.name}` "
             f"({task.reference.citation}).", ""]
    for split, metrics in metrics_by_split.items():
        parts += _split_section(out, task, layout, split, metrics, predictions_by_split.get(split))
    if set(task.eval_splits) <= set(metrics_by_split) and len(task.eval_splits) == 2:
        parts += ["## Internal-to-external gap", "", layout.gap_note, "",
                  layout.gap(*(metrics_by_split[s] for s in task.eval_splits)), ""]
    for heading, body in (extra_sections or {}).items():
        parts += [f"## {heading}", "", body.rstrip(), ""]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _split_section(out: Path, task: Task, layout: SuiteReport, split: str, metrics: Mapping,
                   predictions: tuple[np.ndarray, np.ndarray] | None) -> list[str]:
    """One split's report lines: its tables, ROC figure and confusion-matrix figure."""
    fig_dir = out / "figures"
    slug = _slug(split)
    parts = [f"## {split} (n = {metrics['n']})", "", layout.tables(metrics, task=task, markdown=True), ""]
    if predictions is not None:
        layout.roc(*predictions, fig_dir / f"roc_{slug}.png", task=task, metrics=metrics, split=split)
        parts += [f"![{layout.roc_title}, {split}](figures/roc_{slug}.png)", ""]
    if metrics.get("confusion_matrix") is not None:
        plot_confusion(metrics["confusion_matrix"], fig_dir / f"confusion_{slug}.png",
                       class_names=list(metrics["per_class"]), title=f"Confusion matrix, {split}",
                       task=task)
        parts += [f"![Confusion matrix, {split}](figures/confusion_{slug}.png)", ""]
    if metrics.get("ece_binning") and metrics.get("grades_known", True):
        parts += [f"ECE binning: {metrics['ece_binning']}.", ""]
    return parts
