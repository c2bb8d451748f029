"""The demo's picture: drift score, feedback accuracy and serving version on one time axis.

matplotlib with the Agg backend (no display); the only I/O is the PNG written.
"""

from __future__ import annotations

from pathlib import Path

from demolib.timeline import Timeline, rolling_accuracy, serving_steps

ACCURACY_WINDOW_SECONDS = 5.0


def write_timeline_png(timeline: Timeline, path: Path, *, threshold: float | None) -> Path:
    """Draw `timeline` into `path` (parents created) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, middle, bottom) = plt.subplots(
        3, 1, sharex=True, figsize=(11, 7), height_ratios=(3, 3, 1.6), layout="constrained"
    )
    drift = [s for s in timeline.drift if s.score is not None]
    top.plot([s.t for s in drift], [s.score for s in drift], color="tab:red", label="drift score")
    detected = [s for s in timeline.drift if s.detected]
    if detected:
        top.scatter(
            [s.t for s in detected],
            [s.score or 0 for s in detected],
            color="tab:red",
            s=12,
            label="drift detected",
        )
    if threshold is not None:
        top.axhline(threshold, color="tab:red", linestyle=":", linewidth=1, label="threshold")
    top.set_ylabel("share of drifted\nfeatures")
    top.set_ylim(-0.05, 1.05)
    top.legend(loc="lower right", fontsize=8)

    accuracy = rolling_accuracy(timeline.traffic, ACCURACY_WINDOW_SECONDS)
    middle.plot([t for t, _ in accuracy], [a for _, a in accuracy], color="tab:blue")
    middle.set_ylabel(f"answers right\n(last {ACCURACY_WINDOW_SECONDS:g} s)")
    middle.set_ylim(-0.05, 1.05)

    steps = serving_steps(timeline.traffic)
    if steps:
        end = timeline.traffic[-1].t
        xs = [t for t, _ in steps] + [end]
        ys = [v for _, v in steps] + [steps[-1][1]]
        bottom.step(xs, ys, where="post", color="tab:green")
        bottom.set_yticks(sorted({v for _, v in steps}))
    bottom.set_ylabel("version\nanswering")
    bottom.set_xlabel("seconds since the demo started")

    for axis in (top, middle, bottom):
        for mark in timeline.marks:
            axis.axvline(mark.t, color="grey", linestyle="--", linewidth=0.8)
    previous: float | None = None
    height = 1.0
    for mark in sorted(timeline.marks, key=lambda m: m.t):
        # Marks a few seconds apart would print over each other: step the second one down.
        crowded = previous is not None and mark.t - previous < 3.0
        height = 0.55 if crowded and height == 1.0 else 1.0
        previous = mark.t
        top.annotate(
            mark.label,
            (mark.t, height),
            rotation=90,
            fontsize=7,
            va="top",
            ha="right",
            xytext=(-2, 0),
            textcoords="offset points",
            color="dimgrey",
        )
    figure.suptitle("Kubeloop demo: drift → retrain on captured data → blue-green switch")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
