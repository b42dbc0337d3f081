"""Reports: the Table 2 layout shows the metrics' values; figures are real, readable PNGs."""

from __future__ import annotations

import re
import warnings

import numpy as np
from PIL import Image

from thyroid_bench.evaluation.metrics import gap
from thyroid_bench.evaluation.suites import evaluate_task
from thyroid_bench.evaluation.report import format_gap, format_table2, plot_confusion, plot_roc, write_report
from thyroid_bench.tasks import get_task

TASK = get_task("four-pattern")
CLASS_NAMES = TASK.class_names


def evaluate(y, p, **kw):
    return evaluate_task(TASK, y, p, **kw)


def _case(seed: int, n: int = 200, signal: float = 1.5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += signal
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def _row(text: str, label: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(label))
    return re.findall(r"n/a|\d+\.\d+ \(\d+\.\d+-\d+\.\d+\)|\d+\.\d+", line[len(label):])


def test_table2_cells_are_the_metrics_as_percentages_with_cis():
    y, p = _case(0)
    m = evaluate(y, p, bootstrap=100)
    text = format_table2(m, task=TASK)
    header = text.splitlines()[0]
    assert [header.index(n) for n in CLASS_NAMES] == sorted(header.index(n) for n in CLASS_NAMES)
    assert "type III, n=%d" % m["per_class"]["focal_increased"]["support"] in text
    for label, key in [("Sensitivity", "sensitivity"), ("NPV", "npv"), ("AUC", "auc")]:
        cells = _row(text, label)
        assert len(cells) == 4
        for cell, name in zip(cells, CLASS_NAMES):
            lo, hi = m["ci"][f"per_class.{name}.{key}"]
            assert cell == f"{100 * m['per_class'][name][key]:.1f} ({100 * lo:.1f}-{100 * hi:.1f})"
    acc = _row(text, "Overall accuracy (%)")
    assert acc == [f"{100 * m['accuracy']:.1f} ({100 * m['ci']['accuracy'][0]:.1f}-"
                   f"{100 * m['ci']['accuracy'][1]:.1f})"]
    assert _row(text, "Cohen's kappa")[0].startswith(f"{m['cohen_kappa']:.3f}")
    assert "100 bootstrap resamples" in text
    # rows in the paper's order
    order = [text.index(r) for r in ("Accuracy", "Sensitivity", "Specificity", "PPV", "NPV", "F1", "AUC")]
    assert order == sorted(order)


def test_table2_shows_undefined_as_na_and_markdown():
    y = np.array([0, 0, 1, 1, 3, 3])
    p = np.full((6, 4), 0.1)
    p[np.arange(6), [0, 1, 1, 1, 3, 0]] = 0.7
    m = evaluate(y, p, bootstrap=0)
    text = format_table2(m, task=TASK)
    sens = _row(text, "Sensitivity")
    assert sens[2] == "n/a"  # focal_increased has no cases
    assert sens[0] == "50.0"
    assert "bootstrap off" in text
    md = format_table2(m, task=TASK, markdown=True)
    assert md.splitlines()[0].startswith("| % (95% CI) | diffusely_increased (type I, n=2)")
    assert "| PPV | 50.0 | 66.7 | n/a | 100.0 |" in md


def test_gap_table():
    a, b = evaluate(*_case(1), bootstrap=0), evaluate(*_case(2, signal=0.3), bootstrap=0)
    text = format_gap(gap(a, b))
    line = next(ln for ln in text.splitlines() if ln.startswith("| Overall accuracy"))
    assert f"{100 * (a['accuracy'] - b['accuracy']):+.1f}" in line


def _png(path):
    assert path.is_file() and path.stat().st_size > 5000
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width > 400 and im.height > 400
        lo_hi = im.convert("L").getextrema()
        assert lo_hi[1] - lo_hi[0] > 100  # not a blank canvas


def test_write_report_writes_figures_and_markdown(tmp_path):
    yi, pi = _case(3)
    ye, pe = _case(4, signal=0.5)
    mi, me = evaluate(yi, pi, bootstrap=50), evaluate(ye, pe, bootstrap=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write_report(tmp_path / "run", TASK, {"internal": mi, "external": me},
                            {"internal": (yi, pi), "external": (ye, pe)},
                            title="Test run", extra_sections={"Configuration": "seed: 0"})
    assert path == tmp_path / "run" / "report.md"
    text = path.read_text()
    assert text.startswith("# Test run")
    for split in ("internal", "external"):
        for kind in ("roc", "confusion"):
            assert f"](figures/{kind}_{split}.png)" in text
            _png(tmp_path / "run" / "figures" / f"{kind}_{split}.png")
    assert "## Internal-to-external gap" in text
    assert f"{100 * (mi['accuracy'] - me['accuracy']):+.1f}" in text
    assert text.rstrip().endswith("## Configuration\n\nseed: 0")
    assert format_table2(mi, task=TASK, markdown=True) in text


def test_figures_with_an_absent_class(tmp_path):
    y, p = _case(5, n=80)
    y[y == 2] = 0
    m = evaluate(y, p, bootstrap=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        roc = plot_roc(y, p, tmp_path / "roc.png", metrics=m)
        cm = plot_confusion(m["confusion_matrix"], tmp_path / "cm.png", class_names=CLASS_NAMES)
    _png(roc)
    _png(cm)


def test_report_without_predictions_has_no_roc(tmp_path):
    m = evaluate(*_case(6, n=60), bootstrap=0)
    text = write_report(tmp_path, TASK, {"my split": m}, {}, title="t").read_text()
    assert "roc_" not in text
    assert (tmp_path / "figures" / "confusion_my-split.png").is_file()
    assert not list((tmp_path / "figures").glob("roc_*"))



# --------------------------------------------------------------------------- residual-tissue
RESIDUAL = get_task("residual-tissue")


def _graded(seed: int, n: int = 120, unknown: int = 0):
    y, p = _case(seed, n=n)
    if unknown:
        y[np.flatnonzero(y != 0)[:unknown]] = -1  # present, grade unknown
    return y, p


def test_ordinal_tables_show_detection_and_grade_figures():
    from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, recall_score

    from thyroid_bench.evaluation.report import format_ordinal

    y, p = _graded(7)
    uptake_true = np.where(y == 0, 0.0, 0.8 * y)
    uptake_pred = uptake_true + np.random.default_rng(0).normal(0, 0.3, len(y)).clip(-0.5, 0.5)
    m = evaluate_task(RESIDUAL, y, p, bootstrap=50, values={"uptake_pct": uptake_pred.clip(0)},
                      true_values={"uptake_pct": uptake_true})
    text = format_ordinal(m, task=RESIDUAL, markdown=True)
    present, called = y != 0, 1 - p[:, 0] >= 0.5
    sens = recall_score(present, called)
    lo, hi = m["ci"]["detection_sensitivity"]
    assert f"| Sensitivity (%) | {100 * sens:.1f} ({100 * lo:.1f}-{100 * hi:.1f}) |" in text
    assert f"| Balanced accuracy (%) | {100 * balanced_accuracy_score(present, called):.1f} (" in text
    kappa = cohen_kappa_score(y, p.argmax(1), weights="quadratic")
    assert f"| Quadratic-weighted kappa | {kappa:.3f} (" in text
    mae = np.abs(y - p.argmax(1)).mean()
    assert f"| MAE (grades) | {mae:.3f} (" in text
    (tn, fp), (fn, tp) = m["detection_confusion_matrix"]
    assert f"| absent | {tn} | {fp} |" in text and f"| present | {fn} | {tp} |" in text
    assert tp == int((present & called).sum())
    cm = m["confusion_matrix"]
    assert "| low | " + " | ".join(map(str, cm[1])) + " |" in text
    assert f"| Uptake (n={len(y)} with true and predicted uptake) | value (95% CI) |" in text
    assert f"| MAE (percentage points) | {m['uptake_mae']:.3f} (" in text
    # presence-only labels: no grade figures, a sentence instead; detection as before
    mu = evaluate_task(RESIDUAL, *_graded(7, unknown=10), bootstrap=0)
    text = format_ordinal(mu, task=RESIDUAL)
    assert "not known for every case" in text and "Quadratic" not in text and "Specificity" in text
    assert "Uptake" not in text


def test_detection_roc_figure(tmp_path):
    from thyroid_bench.evaluation.report import plot_detection_roc

    y, p = _graded(8, unknown=5)
    m = evaluate_task(RESIDUAL, y, p, bootstrap=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _png(plot_detection_roc(y, p, tmp_path / "roc.png", negative_index=0, metrics=m))
        _png(plot_detection_roc(np.ones(10, dtype=int), p[:10], tmp_path / "one.png", negative_index=0))


def test_residual_report_layout(tmp_path):
    yi, pi = _graded(9)
    ye, pe = _graded(10, unknown=4)
    mi, me = evaluate_task(RESIDUAL, yi, pi, bootstrap=20), evaluate_task(RESIDUAL, ye, pe, bootstrap=20)
    text = write_report(tmp_path, RESIDUAL, {"internal": mi, "external": me},
                        {"internal": (yi, pi), "external": (ye, pe)}, title="r").read_text()
    assert "Table" not in text and "type I" not in text  # not four-pattern's Table 2
    assert text.count("| Detection (n=") == 2 and text.count("called when P(present) = 1 - P(absent) >= 0.5") == 2
    assert "![ROC curve of detection, internal](figures/roc_internal.png)" in text
    assert (tmp_path / "figures" / "confusion_internal.png").is_file()
    assert not (tmp_path / "figures" / "confusion_external.png").exists()  # grades unknown there
    gap = text.split("## Internal-to-external gap")[1]
    d = mi["detection_balanced_accuracy"] - me["detection_balanced_accuracy"]
    assert f"| Detection: Balanced accuracy | {100 * d:+.1f} |" in gap
    assert "| Grade: Quadratic-weighted kappa | n/a |" in gap


def test_an_interval_with_a_negative_bound_reads_unambiguously():
    """A kappa below chance: "-0.143 (-0.537 to 0.372)", not "(-0.537-0.372)" where the
    hyphen reads as a minus sign; intervals of non-negative figures keep their hyphen."""
    from sklearn.metrics import cohen_kappa_score

    from thyroid_bench.evaluation.report import format_grade_table

    y, p = _graded(3)
    p = p[:, ::-1].copy()  # an anti-model: predicts the grade scale reversed
    m = evaluate_task(RESIDUAL, y, p, bootstrap=100)
    kappa = cohen_kappa_score(y, p.argmax(1), weights="quadratic")
    (lo, hi), acc = m["ci"]["quadratic_kappa"], m["accuracy"]
    assert kappa < 0 and lo < 0 and m["quadratic_kappa"] == kappa
    text = format_grade_table(m, task=RESIDUAL, markdown=True)
    assert f"| Quadratic-weighted kappa | {kappa:.3f} ({lo:.3f} to {hi:.3f}) |" in text
    alo, ahi = m["ci"]["accuracy"]
    assert f"| Accuracy (%) | {100 * acc:.1f} ({100 * alo:.1f}-{100 * ahi:.1f}) |" in text
