"""The task ``four-pattern`` (Qiao et al. 2021), label schema v1.

Qiao et al. 2021 (BMC Medical Imaging, doi 10.1186/s12880-021-00710-4) classify a planar
99mTc-pertechnetate thyroid scintigram into four uptake patterns, in a fixed order: a
model's output column k is class k, everywhere in this package and in every file it
writes. Main score: macro F1 on the external centre (never trained on).
"""

from __future__ import annotations

from thyroid_bench.tasks.registry import register_task
from thyroid_bench.tasks.task import MainScore, Reference, Target, Task, TaskClass

__all__ = ["FOUR_PATTERN"]

FOUR_PATTERN = register_task(Task(
    name="four-pattern",
    description="classify a planar 99mTc-pertechnetate thyroid scintigram into four uptake patterns",
    reference=Reference(citation="Qiao et al. 2021, BMC Medical Imaging",
                        doi="10.1186/s12880-021-00710-4"),
    modality="planar 99mTc-pertechnetate scintigraphy, anterior neck view",
    target=Target(kind="multiclass", classes=(
        TaskClass(index=0, name="diffusely_increased", code="I",
                  reading="enlarged gland, homogeneous uptake above the salivary glands"),
        TaskClass(index=1, name="diffusely_decreased", code="II",
                  reading="diminished or absent thyroid uptake"),
        TaskClass(index=2, name="focal_increased", code="III",
                  reading="one hot nodule, rest of the gland suppressed or not"),
        TaskClass(index=3, name="heterogeneous_uptake", code="IV",
                  reading="several areas of increased and suppressed uptake"),
    )),
    main_score=MainScore(metric="macro_f1", split="external"),
    selection_metric="macro_f1",
    metric_suite="multiclass",
    datasets=("tsb-synthetic",),
))
