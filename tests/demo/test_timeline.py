"""The timeline's derived series (pure) and its picture (a real PNG written by matplotlib)."""

from __future__ import annotations

from pathlib import Path

from demolib import plot, timeline
from demolib.timeline import DriftSample, Timeline, TrafficSample


def sample(t: float, correct: int, version: str, rows: int = 10) -> TrafficSample:
    return TrafficSample(t=t, rows=rows, correct=correct, shifted=t >= 10, served_by=version)


TRAFFIC = [
    sample(0, 10, "1"),
    sample(5, 9, "1"),
    sample(10, 3, "1"),
    sample(15, 4, "1"),
    sample(20, 10, "2"),
    sample(25, 10, "2"),
]


def test_rolling_accuracy_covers_only_the_last_window() -> None:
    points = timeline.rolling_accuracy(TRAFFIC, window_seconds=5)
    assert points[0] == (0, 1.0)
    assert points[2] == (10, (9 + 3) / 20)
    assert points[-1] == (25, 1.0)


def test_versions_and_first_answers() -> None:
    assert timeline.version_number("iris-v3") == 3
    assert timeline.version_number("3") == 3
    assert timeline.version_number(None) is None
    assert timeline.version_number("blue") is None
    assert timeline.serving_steps(TRAFFIC) == [(0, 1), (20, 2)]
    assert timeline.first_answer_from(TRAFFIC, "iris-v2") == 20
    assert timeline.first_answer_from(TRAFFIC, "iris-v7") is None


def test_accuracy_between_by_time_and_by_version() -> None:
    assert timeline.accuracy_between(TRAFFIC, 0, 10) == 19 / 20
    assert timeline.accuracy_between(TRAFFIC, 10, 30, served_by="iris-v1") == 7 / 20
    assert timeline.accuracy_between(TRAFFIC, 10, 30, served_by="iris-v2") == 1.0
    assert timeline.accuracy_between(TRAFFIC, 100, 200) is None


def test_the_picture_is_a_png(tmp_path: Path) -> None:
    line = Timeline()
    for t in range(30):
        line.add_drift(DriftSample(t, 0.5 if 12 <= t < 22 else 0.0, 12 <= t < 22, "iris-v1"))
    for s in TRAFFIC:
        line.add_traffic(s)
    line.mark(10, "shift")
    line.mark(20, "switch")
    written = plot.write_timeline_png(line.snapshot(), tmp_path / "out" / "t.png", threshold=0.3)
    data = written.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000


def test_an_empty_timeline_still_draws(tmp_path: Path) -> None:
    written = plot.write_timeline_png(Timeline(), tmp_path / "empty.png", threshold=None)
    assert written.read_bytes().startswith(b"\x89PNG")
