"""A preview grid of example images: rows are the four classes, columns the two centres.

Each image is shown on its own linear scale from 0 to its maximum count, in
inverted grey (high counts dark), the way planar scintigrams are usually
printed. The figure says "synthetic" in its title when the images come from
the synthetic reference cohort.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from thyroid_bench.schema import CLASSES, NUM_CLASSES

__all__ = ["render_preview", "preview_size_px", "CELL_INCH", "DPI"]

#: Size of one image cell (inches) and the figure's resolution.
CELL_INCH = 1.6
DPI = 100
_LEFT_INCH = 1.5  # row labels
_TOP_INCH = 0.9  # title and column headers
_CENTERS = ("center1", "center2")


def preview_size_px(per_cell: int) -> tuple[int, int]:
    """(width, height) in pixels of the preview PNG for ``per_cell`` images per class and centre."""
    cols = len(_CENTERS) * per_cell
    return (round((_LEFT_INCH + cols * CELL_INCH) * DPI),
            round((_TOP_INCH + NUM_CLASSES * CELL_INCH) * DPI))


def _rows_from_dataset(path: Path) -> dict[str, list[dict[str, Any]]]:
    from thyroid_bench.data.format import decode_image, read_manifest, read_split

    manifest = read_manifest(path)
    out: dict[str, list[dict[str, Any]]] = {}
    for split in manifest.get("splits", {}):
        frame = read_split(path, split, columns=["image", "label", "center"])
        out[split] = [{"image": decode_image(img), "label": int(lab), "center": str(c)}
                      for img, lab, c in zip(frame["image"], frame["label"], frame["center"])]
    return out


def _pick(rows: Sequence[Mapping[str, Any]], per_cell: int,
          rng: np.random.Generator) -> dict[tuple[int, str], list[np.ndarray]]:
    cells: dict[tuple[int, str], list[int]] = {}
    for i, r in enumerate(rows):
        cells.setdefault((int(r["label"]), str(r["center"])), []).append(i)
    picked = {}
    for key, idx in cells.items():
        take = rng.permutation(len(idx))[:per_cell]
        picked[key] = [np.asarray(rows[idx[t]]["image"]) for t in sorted(take)]
    return picked


def render_preview(rows_by_split: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                   out: Path | str | None = None, *, dataset_path: Path | None = None,
                   per_cell: int = 3, seed: int = 0, title: str | None = None,
                   synthetic: bool = True) -> Path:
    """Write a PNG grid of ``per_cell`` example images per class (rows) and centre (columns).

    The images come from ``rows_by_split`` (rows as :func:`generate_split`
    returns them), else from the dataset folder ``dataset_path``, else from a
    small cohort generated on the spot with the official seed. ``seed`` picks
    the examples. The title says "SYNTHETIC" when ``synthetic`` (in-memory rows)
    or the dataset's manifest says so. Returns ``out``.
    """
    if out is None:
        raise ValueError("render_preview needs `out`, the PNG file to write")
    if per_cell < 1:
        raise ValueError(f"per_cell must be at least 1, got {per_cell}")
    out = Path(out)
    synthetic_source = synthetic
    if rows_by_split is None:
        if dataset_path is not None:
            rows_by_split = _rows_from_dataset(Path(dataset_path))
            from thyroid_bench.data.format import read_manifest

            manifest = read_manifest(Path(dataset_path))
            synthetic_source = bool(manifest.get("synthetic", False))
            name = f"{manifest.get('name', '?')} {manifest.get('version', '')}".strip()
        else:
            from thyroid_bench.data.synthetic import generate_split

            rows_by_split = {s: generate_split(s, counts=(per_cell,) * NUM_CLASSES, progress=False)
                             for s in ("internal", "external")}
            name = None
    else:
        name = None
    if name is None:
        from thyroid_bench.data.synthetic import NAME, VERSION

        name = f"{NAME} {VERSION}"
    rows = [r for split_rows in rows_by_split.values() for r in split_rows]
    picked = _pick(rows, per_cell, np.random.default_rng(seed))

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    width, height = preview_size_px(per_cell)
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    cols = len(_CENTERS) * per_cell
    w_cell, h_cell = CELL_INCH * DPI / width, CELL_INCH * DPI / height
    left, top = _LEFT_INCH * DPI / width, 1.0 - _TOP_INCH * DPI / height
    if title is None:
        title = (f"{name}: SYNTHETIC phantoms, not patient data" if synthetic_source else name)
    fig.text(0.5, 1.0 - 0.25 * _TOP_INCH * DPI / height, title, ha="center", va="center",
             fontsize=11, weight="bold", color="darkred" if synthetic_source else "black")
    for c, center in enumerate(_CENTERS):
        example = next((r for r in rows if r["center"] == center), None)
        shape = "" if example is None else f" ({np.asarray(example['image']).shape[1]}x" \
                                              f"{np.asarray(example['image']).shape[0]})"
        fig.text(left + (c + 0.5) * per_cell * w_cell, top + 0.3 * (1.0 - top), f"{center}{shape}",
                 ha="center", va="center", fontsize=9)
    for k, cls in enumerate(CLASSES):
        y = top - (k + 1) * h_cell
        fig.text(0.5 * left, y + 0.5 * h_cell, f"type {cls.paper_type}\n{cls.name.replace('_', ' ')}",
                 ha="center", va="center", fontsize=8)
        for c, center in enumerate(_CENTERS):
            images = picked.get((k, center), [])
            for m in range(per_cell):
                ax = fig.add_axes((left + (c * per_cell + m) * w_cell + 0.03 * w_cell, y + 0.03 * h_cell,
                                   0.94 * w_cell, 0.94 * h_cell))
                ax.set_xticks([])
                ax.set_yticks([])
                if m < len(images):
                    img = images[m]
                    ax.imshow(img, cmap="gray_r", vmin=0, vmax=max(int(img.max()), 1),
                              interpolation="nearest")
                else:
                    ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=7,
                            transform=ax.transAxes, color="grey")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, format="png")
    plt.close(fig)
    return out
