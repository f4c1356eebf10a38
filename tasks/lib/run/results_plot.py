"""The results plot: per-dataset AP sorted (weakest first), SAM3's published figures marked, missing and
failed datasets in red at zero; RF100-VL's domain means beside the published ones. matplotlib (Agg) is
imported only here, only when a plot is drawn."""

import os
from pathlib import Path
from typing import Any

from . import published

MAX_PANELS = 4
COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


def draw(summary: dict[str, Any], path: Path) -> Path:
    """Write the PNG atomically (a temporary name beside it, then a rename); returns its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg, without pyplot's start-up
    from matplotlib.figure import Figure

    groups = summary["groups"][:MAX_PANELS]
    domains = sorted({d for g in groups for d in (r["domain"] for r in g["datasets"]) if d})
    color = {d: COLORS[i % len(COLORS)] for i, d in enumerate(domains)}
    count = max((len(g["datasets"]) for g in groups), default=1)
    width = min(24.0, max(8.0, 0.16 * count + 3))
    longest = max((len(r["dataset"]) for g in groups for r in g["datasets"]), default=8) + 10  # + " (failed)"
    label_inches = 0.2 + longest * (0.05 if count > 40 else 0.065)  # rotated dataset names under each panel
    # every panel: a title above (0.55 in), the plot (3 in), its labels below; placed in inches, top down
    blocks = [label_inches] * len(groups) + ([0.45] if domains else [])
    height = sum(0.55 + 3.0 + below for below in blocks) + 0.1
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    axes, top = [], height - 0.1
    for below in blocks:
        top -= 0.55 + 3.0
        axes.append(figure.add_axes((0.6 / width, top / height, 1 - 0.8 / width, 3.0 / height)))
        top -= below
    status = {(t["cell"], t["dataset"]): t["status"] for t in summary["tasks"]}
    for ax, group in zip(axes, groups, strict=False):
        _per_dataset(ax, group, summary, color, status)
    if domains:
        _domains(axes[-1], groups)
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    try:
        figure.savefig(tmp, dpi=90)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _per_dataset(ax, group: dict, summary: dict, color: dict, status: dict) -> None:
    rows = sorted(group["datasets"], key=lambda r: (r["AP"] is not None, r["AP"] or 0.0))
    xs = range(len(rows))
    heights = [r["AP"] or 0.0 for r in rows]
    errors = [r["std"] or 0.0 for r in rows] if group["seeds"] else None
    ax.bar(
        xs,
        heights,
        yerr=errors,
        color=[color.get(r["domain"], COLORS[0]) for r in rows],
        error_kw={"elinewidth": 0.8, "capsize": 1.5},
    )
    for domain in sorted({r["domain"] for r in rows if r["domain"]}):
        ax.bar([0], [0], color=color[domain], label=published.DOMAIN_LABELS.get(domain, domain))  # legend only
    marks = [(x, r["published"]) for x, r in zip(xs, rows, strict=True) if r["published"] is not None]
    if not marks and summary["benchmark"] == published.RF100VL:  # no per-dataset figure: the domain's, per bar
        by_domain = {d["domain"]: d["published"] for d in group["domains"]}
        marks = [(x, by_domain.get(r["domain"])) for x, r in zip(xs, rows, strict=True) if by_domain.get(r["domain"])]
        marker_label = "SAM3 published (domain mean)"
    else:
        marker_label = "SAM3 published"
    if marks:
        ax.scatter(
            [m[0] for m in marks], [m[1] for m in marks], marker="D", s=14, color="black", zorder=3, label=marker_label
        )
    if group["mean"] is not None:
        ax.axhline(
            group["mean"],
            color="#333333",
            linestyle="--",
            linewidth=1,
            label=f"ours: mean {group['mean']:.1f} over {group['counted']}",
        )
    if group["published"]:
        ax.axhline(
            group["published"]["AP"],
            color="black",
            linestyle=":",
            linewidth=1.2,
            label=f"SAM3 published: {group['published']['AP']:.1f} over {group['published']['over']}",
        )
    names = []
    for row in rows:
        states = {status.get((cell, row["dataset"]), "missing") for cell in group["cells"]}
        names.append(row["dataset"] if row["AP"] is not None else f"{row['dataset']} ({'/'.join(sorted(states))})")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=90, fontsize=6 if len(rows) > 40 else 8)
    for tick, row in zip(ax.get_xticklabels(), rows, strict=True):
        tick.set_color("red" if row["AP"] is None else "black")
    title = f"{summary['run']}{': ' + group['label'] if group['label'] else ''}: box AP per dataset, weakest first"
    seeds = f"mean ± std over seeds {', '.join(group['seeds'])}; " if group["seeds"] else ""
    ax.set_title(f"{title}\n{seeds}beside SAM3: {group['setting_label']}", fontsize=9, loc="left")
    ax.set_ylabel("box AP (x100)")
    ax.set_xlim(-0.7, len(rows) - 0.3)
    ax.legend(fontsize=7, loc="upper left")


def _domains(ax, groups: list[dict]) -> None:
    labels = [d["label"] for d in groups[0]["domains"]]
    series = [(g["label"] or "ours", [d["AP"] for d in g["domains"]], [d["std"] for d in g["domains"]]) for g in groups]
    refs = [d["published"] for d in groups[0]["domains"]]
    if any(r is not None for r in refs):
        series.append((f"SAM3 published ({groups[0]['setting_label']})", refs, [None] * len(refs)))
    step = 0.8 / len(series)
    for i, (name, values, stds) in enumerate(series):
        xs = [x + i * step - 0.4 + step / 2 for x in range(len(labels))]
        ax.bar(
            xs,
            [v or 0.0 for v in values],
            step,
            yerr=[s or 0.0 for s in stds],
            label=name,
            color="black" if name.startswith("SAM3 published") else COLORS[i % len(COLORS)],
        )
    ax.set_xticks(list(range(len(labels))))
    ax.set_xticklabels([f"{d['label']} ({d['counted']}/{d['datasets']})" for d in groups[0]["domains"]], fontsize=8)
    ax.set_ylabel("box AP (x100)")
    ax.set_title("RF100-VL domain means (datasets counted / in the run)", fontsize=10, loc="left")
    ax.legend(fontsize=7)
