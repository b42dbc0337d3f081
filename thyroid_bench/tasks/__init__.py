"""Tasks as data: the :class:`Task` definition, its registry and the built-in tasks.

``get_task(name)`` returns a registered task; ``list_tasks()`` lists them. The built-in
task ``four-pattern`` (Qiao et al. 2021) registers on import.
"""

from thyroid_bench.tasks.registry import TaskError, get_task, list_tasks, register_task, unregister_task
from thyroid_bench.tasks.task import (
    EVAL_SPLITS,
    NO_FOLD,
    NUM_FOLDS,
    PROB_SUM_TOLERANCE,
    SPLITS,
    TRAIN_SPLIT,
    MainScore,
    Reference,
    Target,
    Task,
    TaskClass,
)
from thyroid_bench.tasks import four_pattern as _four_pattern  # noqa: F401  (registers it)

__all__ = [
    "EVAL_SPLITS", "NO_FOLD", "NUM_FOLDS", "PROB_SUM_TOLERANCE", "SPLITS", "TRAIN_SPLIT",
    "MainScore", "Reference", "Target", "Task", "TaskClass", "TaskError",
    "DEFAULT_TASK", "get_task", "list_tasks", "register_task", "unregister_task",
]

#: The task of a dataset or entry that names none (datasets written before tasks were data).
DEFAULT_TASK = "four-pattern"
