"""CLI commands of the harness: ``thyroid-bench models`` and ``thyroid-bench run``.

Argument parsing only; the work is done by :mod:`thyroid_bench.models` and
:func:`thyroid_bench.harness.run.run`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_commands", "models_table"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``models`` and ``run`` to the main parser's subcommands."""
    from thyroid_bench.tasks import DEFAULT_TASK

    p = sub.add_parser("models", help="list registered models with parameters and input size",
                       description="List the model registry: the paper's four networks, models "
                       "from installed plugins (entry-point group thyroid_bench.models). Any timm "
                       "model works as timm:<name>; any factory as package.module:function or "
                       "path/to/file.py:function.")
    p.add_argument("--task", default=None,
                   help="task whose classes size the heads (parameter counts) and whose views set "
                   f"the input channels; default: {DEFAULT_TASK}")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=_cmd_models)

    from thyroid_bench.harness.protocols import PROTOCOLS, get_protocol

    r = sub.add_parser("run", help="train a model under a protocol, evaluate, write a run folder",
                       description="Train MODEL under a protocol for the task of the dataset's "
                       "manifest, on the train folds other than the protocol's selection fold (fold 0, "
                       "where the task's selection metric picks the best epoch), evaluate on "
                       "the task's evaluation splits (internal and external), and write a run folder "
                       "with entry.json, predictions, metrics, report and checkpoint. The task sets "
                       "the input (residual-tissue: anterior and posterior views as two channels), "
                       "the loss from its target kind, and the figures reported. Under torchrun "
                       "or accelerate launch it trains data-parallel and rank 0 writes the folder.")
    r.add_argument("--model", required=True,
                   help="registered name (see `thyroid-bench models`), timm:<name>, "
                   "package.module:function or path/to/file.py:function")
    names = [n for p in dict.fromkeys(p.name for p in PROTOCOLS.values())
             for n in (p, *(label for label, q in PROTOCOLS.items() if q.name == p))]
    r.add_argument("--protocol", choices=names, default=None, metavar="NAME[@VERSION]",
                   help=f"one of {', '.join(names)}; a bare name is its latest version "
                   f"(quick: {get_protocol('quick').label}). Default: paper on CUDA, quick on CPU")
    r.add_argument("--epochs", type=int, default=None, help="override the protocol's epochs")
    r.add_argument("--batch-size", type=int, default=None, help="override the protocol's batch size")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    r.add_argument("--num-threads", type=int, default=None,
                   help="CPU threads (default: all cores, at most 8; results are bit-for-bit "
                   "reproducible for the same seed and thread count)")
    r.add_argument("--dataset", default=None,
                   help="dataset name, name@version or folder (default: tsb-synthetic)")
    r.add_argument("--home", type=Path, default=None, help="dataset home")
    r.add_argument("--out", type=Path, default=None,
                   help="run folder (default: runs/<model>-<protocol>-<UTC timestamp>)")
    r.add_argument("--weights", type=Path, default=None,
                   help="local pretrained backbone weights (timm .safetensors or .pth) instead of the Hub")
    r.add_argument("--require-pretrained", action="store_true",
                   help="fail instead of training from random initialisation when the protocol's "
                   "pretrained weights cannot be loaded")
    r.add_argument("--checkpoint", type=Path, default=None,
                   help="start from a run's model.safetensors")
    r.add_argument("--eval-only", action="store_true",
                   help="with --checkpoint: evaluate only, no training")
    r.add_argument("--submitter", default=None,
                   help="name recorded in the entry (default: $THYROID_BENCH_SUBMITTER or anonymous)")
    r.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the CIs")
    r.add_argument("--quiet", action="store_true", help="no progress bars or log lines on the terminal")
    a = r.add_argument_group("device use (speed and rounding, not what is computed)")
    a.add_argument("--amp", choices=["auto", "off", "bf16", "fp16"], default="auto",
                   help="autocast dtype; auto: bf16 on CUDA (fp16 where bf16 is unsupported), "
                   "off on the CPU")
    a.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="NHWC memory format; auto: on (1.16x faster training on 2 CPU cores, "
                   "see BENCHMARKS.md); off reproduces CPU runs of thyroid-bench 0.1 bit for bit")
    a.add_argument("--compile", action="store_true",
                   help="torch.compile the model for training (compiling takes minutes first)")
    a.add_argument("--stream", action="store_true",
                   help="read every split batch by batch from a disk cache in $TMPDIR instead of "
                   "holding it in memory (the same results; taken on its own when the largest "
                   "split would need over half the available memory)")
    r.set_defaults(func=_cmd_run)


def _model_kwargs(task_name: str | None) -> dict[str, int]:
    """How a model is built for ``task_name`` (the default task when ``None``): its classes,
    and one input channel per view when the task has several."""
    from thyroid_bench.models.resolve import channel_kwargs
    from thyroid_bench.tasks import DEFAULT_TASK, get_task

    task = get_task(task_name or DEFAULT_TASK)
    return {"num_classes": task.num_classes, **channel_kwargs(task)}


def models_table(task: str | None = None) -> str:
    """The registry as a markdown table (name, source, parameters, input, channels, weights,
    licence), each model built with the classes and views of ``task`` (default: the default task)."""
    from thyroid_bench.models import describe_model, list_models

    kwargs = _model_kwargs(task)
    rows = ["| model | source | parameters | input | channels | pretrained weights | licence |",
            "| --- | --- | ---: | --- | --- | --- | --- |"]
    for name in list_models():
        m = describe_model(name, **kwargs)
        rows.append(f"| `{m.name}` | {m.source} | {m.parameters / 1e6:.1f} M | {m.input_size}x{m.input_size} "
                    f"| {m.in_chans} ({m.channel_policy}) | {m.pretrained_tag or '-'} | {m.licence or '-'} |")
    return "\n".join(rows)


def _cmd_models(args: argparse.Namespace) -> int:
    from thyroid_bench.models import describe_model, list_models

    kwargs = _model_kwargs(args.task)
    if args.json:
        print(json.dumps([describe_model(n, **kwargs).model_dump(mode="json")
                          for n in list_models()], indent=2))
        return 0
    print(models_table(args.task))
    chans = kwargs.get("in_chans")
    channels = f"{chans} input channels, one per view" if chans else "1 input channel"
    print(f"\nAlso: timm:<name> (any timm model, {channels}, linear head), "
          "package.module:function, path/to/file.py:function.")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from thyroid_bench.harness.run import run

    result = run(args.model, protocol=args.protocol, epochs=args.epochs, batch_size=args.batch_size,
                 seed=args.seed, device=args.device, dataset=args.dataset, home=args.home,
                 out=args.out, weights=args.weights, require_pretrained=args.require_pretrained,
                 checkpoint=args.checkpoint, eval_only=args.eval_only, num_threads=args.num_threads,
                 submitter=args.submitter, bootstrap=args.bootstrap, progress=not args.quiet,
                 amp=args.amp, channels_last=args.channels_last, compile=args.compile,
                 stream=args.stream)
    if result is None:  # a torchrun worker: rank 0 writes and prints the results
        return 0
    from thyroid_bench.evaluation.report import format_tables
    from thyroid_bench.tasks import get_task

    from thyroid_bench.evaluation.withheld import is_withheld
    from thyroid_bench.harness.run import WITHHELD_NOTE

    task = get_task(result.entry.task)
    for split, m in result.metrics.items():
        print(f"\n{split} (n = {m['n']})")
        print(WITHHELD_NOTE if is_withheld(m) else format_tables(m, task=task))
    print(f"\nrun folder: {result.run_dir}")
    sys.stdout.flush()
    return 0
