"""The task registry: names -> :class:`~thyroid_bench.tasks.task.Task` definitions.

A leaf, as timm's ``_registry.py`` is: task modules register into it when imported
(:mod:`thyroid_bench.tasks` imports the built-in ones). A test or a plugin registers a
new task with :func:`register_task` and every command then serves it.
"""

from __future__ import annotations

from thyroid_bench.errors import ThyroidBenchError, did_you_mean
from thyroid_bench.tasks.task import Task

__all__ = ["TaskError", "register_task", "unregister_task", "get_task", "list_tasks"]

_TASKS: dict[str, Task] = {}


class TaskError(ThyroidBenchError):
    """An unknown task name, or a task registered twice."""


def register_task(task: Task, *, replace: bool = False) -> Task:
    """Add ``task`` to the registry (``replace`` allows a new definition under a known name)."""
    if not isinstance(task, Task):
        raise TaskError(f"register_task needs a thyroid_bench.tasks.Task, got {type(task).__name__}")
    if task.name in _TASKS and not replace and _TASKS[task.name] != task:
        raise TaskError(f"task {task.name!r} is already registered with another definition")
    _TASKS[task.name] = task
    return task


def unregister_task(name: str) -> None:
    """Remove a task (tests that register their own use it to clean up)."""
    _TASKS.pop(name, None)


def get_task(name: str) -> Task:
    """The task called ``name``; :class:`TaskError` with close matches otherwise."""
    try:
        return _TASKS[name]
    except KeyError:
        hint = did_you_mean(name, _TASKS, n=2, cutoff=0.5)
        raise TaskError(f"unknown task {name!r}; {hint}known: {', '.join(_TASKS) or 'none'} "
                        "(a newer thyroid-bench, or the package defining it, may be needed)") from None


def list_tasks() -> list[Task]:
    """The registered tasks, in registration order."""
    return list(_TASKS.values())
