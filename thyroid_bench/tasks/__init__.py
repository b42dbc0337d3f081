"""Tasks as data: the :class:`Task` definition, its registry and the built-in tasks.

``get_task(name)`` returns a registered task; ``list_tasks()`` lists them. The built-in
tasks ``four-pattern`` (Qiao et al. 2021) and ``residual-tissue`` (Lai et al. 2023)
register on import.
"""

from thyroid_bench.tasks.registry import TaskError, get_task, list_tasks, register_task, unregister_task
from thyroid_bench.tasks.task import (
    EVAL_SPLITS,
    BASE_COLUMNS,
    NO_FOLD,
    NUM_FOLDS,
    UNKNOWN_GRADE,
    PROB_SUM_TOLERANCE,
    SPLITS,
    TRAIN_SPLIT,
    Detection,
    ExtraColumn,
    MainScore,
    PublishedResult,
    Reference,
    Target,
    Task,
    TaskClass,
)
from thyroid_bench.tasks import four_pattern as _four_pattern  # noqa: F401  (registers it)
from thyroid_bench.tasks import residual_tissue as _residual_tissue  # noqa: F401  (registers it)

__all__ = [
    "BASE_COLUMNS", "EVAL_SPLITS", "NO_FOLD", "UNKNOWN_GRADE", "NUM_FOLDS", "PROB_SUM_TOLERANCE", "SPLITS", "TRAIN_SPLIT",
    "Detection", "ExtraColumn", "MainScore", "PublishedResult", "Reference", "Target", "Task", "TaskClass", "TaskError",
    "DEFAULT_TASK", "get_task", "list_tasks", "register_task", "unregister_task",
]

#: The task of a dataset or entry that names none (datasets written before tasks were data).
DEFAULT_TASK = "four-pattern"
