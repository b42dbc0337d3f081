"""Cross-check `thyroid-bench score --json` of a residual-tissue predictions file against scikit-learn.

    thyroid-bench score RUN/predictions/external.csv --split external --dataset tsb-residual --json s.json
    python scripts/crosscheck-residual.py RUN/predictions/external.csv external s.json

Prints each figure beside scikit-learn's and the largest difference; fails if the 4x4 confusion
matrices differ. Needs tsb-residual 1.0.0 in the dataset home.
"""
import json, sys
import numpy as np, pandas as pd
from sklearn import metrics as skm
from thyroid_bench.data.format import read_split, resolve_dataset
pred_path, split, score_json = sys.argv[1:4]
p = pd.read_csv(pred_path)
truth = read_split(resolve_dataset("tsb-residual"), split, columns=["case_id", "label", "uptake_pct"])
df = p.merge(truth, on="case_id", suffixes=("_pred", ""))
y = df["label"].to_numpy()
P = df[["prob_absent", "prob_low", "prob_moderate", "prob_high"]].to_numpy()
m = json.load(open(score_json))["metrics"]
present, called = (y != 0).astype(int), ((1 - P[:, 0]) >= 0.5).astype(int)
g = P.argmax(1)
ref = {
    "detection_sensitivity": skm.recall_score(present, called),
    "detection_specificity": skm.recall_score(present, called, pos_label=0),
    "detection_ppv": skm.precision_score(present, called),
    "detection_npv": skm.precision_score(present, called, pos_label=0),
    "detection_balanced_accuracy": skm.balanced_accuracy_score(present, called),
    "detection_f1": skm.f1_score(present, called),
    "detection_accuracy": skm.accuracy_score(present, called),
    "detection_auc": skm.roc_auc_score(present, 1 - P[:, 0]),
    "accuracy": skm.accuracy_score(y, g),
    "quadratic_kappa": skm.cohen_kappa_score(y, g, labels=range(4), weights="quadratic"),
    "grade_mae": skm.mean_absolute_error(y, g),
    "macro_f1": skm.f1_score(y, g, average="macro"),
    "balanced_accuracy": skm.balanced_accuracy_score(y, g),
    "cohen_kappa": skm.cohen_kappa_score(y, g),
    "mcc": skm.matthews_corrcoef(y, g),
    "macro_auc": skm.roc_auc_score(y, P, multi_class="ovr"),
}
worst = 0.0
for k, v in ref.items():
    d = abs(m[k] - v); worst = max(worst, d)
    print(f"{k:30s} score {m[k]:.12f}  sklearn {v:.12f}  |diff| {d:.1e}")
assert np.array_equal(np.array(m["confusion_matrix"]), skm.confusion_matrix(y, g, labels=range(4)))
print(f"n={len(y)}; largest difference {worst:.1e}; 4x4 confusion matrix equal")
