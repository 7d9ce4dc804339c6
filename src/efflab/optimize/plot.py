"""The study's picture: every trial and the front, as a PNG in the study folder.

Two or more objectives: the first two objectives against each other (feasible,
infeasible and failed trials apart, the front joined as a step line, interval bars
on every measured trial). One objective: its value per trial with the best so far.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # headless: no display on build machines
import matplotlib.pyplot as plt  # noqa: E402

from efflab.optimize.request import Request  # noqa: E402

if TYPE_CHECKING:
    from efflab.optimize.report import TrialRow


def _xy(rows, metric: str):
    xs = [r.objectives[metric]["median"] for r in rows]
    lo = [r.objectives[metric]["median"] - r.objectives[metric]["low"] for r in rows]
    hi = [r.objectives[metric]["high"] - r.objectives[metric]["median"] for r in rows]
    return xs, [lo, hi]


def trials_plot(req: Request, rows: list[TrialRow], out: Path) -> Path:
    ok = [r for r in rows if r.ok and all(o.metric in r.objectives for o in req.objectives)]
    feas = [r for r in ok if r.feasible]
    infeas = [r for r in ok if not r.feasible]
    front = [r for r in ok if r.front]
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    cons = ", ".join(c.text() for c in req.constraints) or "no constraints"
    if len(req.objectives) >= 2:
        mx, my = req.objectives[0].metric, req.objectives[1].metric
        for group, style, label in (
            (feas, {"color": "tab:blue", "marker": "o"}, "feasible"),
            (infeas, {"color": "tab:gray", "marker": "x"}, "infeasible"),
        ):
            if group:
                x, xerr = _xy(group, mx)
                y, yerr = _xy(group, my)
                ax.errorbar(x, y, xerr=xerr, yerr=yerr, linestyle="none", alpha=0.6,
                            label=f"{label} ({len(group)})", **style)  # fmt: skip
        if front:
            pts = sorted((r.objectives[mx]["median"], r.objectives[my]["median"]) for r in front)
            ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="tab:red")
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=90, facecolors="none",
                       edgecolors="tab:red", label=f"front ({len(pts)})", zorder=3)  # fmt: skip
        ax.set_xlabel(f"{mx} ({req.objectives[0].direction}, median)")
        ax.set_ylabel(f"{my} ({req.objectives[1].direction}, median)")
    else:
        m = req.objectives[0].metric
        sign = 1 if req.objectives[0].direction == "maximize" else -1
        for group, style, label in (
            (feas, {"color": "tab:blue", "marker": "o"}, "feasible"),
            (infeas, {"color": "tab:gray", "marker": "x"}, "infeasible"),
        ):
            if group:
                y, yerr = _xy(group, m)
                ax.errorbar([r.number for r in group], y, yerr=yerr, linestyle="none",
                            alpha=0.7, label=f"{label} ({len(group)})", **style)  # fmt: skip
        best, line = None, []
        for r in sorted(feas, key=lambda r: r.number):
            v = r.objectives[m]["median"]
            best = v if best is None or sign * v > sign * best else best
            line.append((r.number, best))
        if line:
            ax.step([p[0] for p in line], [p[1] for p in line], where="post",
                    color="tab:red", label="best so far")  # fmt: skip
        ax.set_xlabel("trial")
        ax.set_ylabel(f"{m} ({req.objectives[0].direction}, median)")
    failed = sum(not r.ok for r in rows)
    ax.set_title(f"{req.experiment}: {len(rows)} trials ({failed} failed), {cons}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out
