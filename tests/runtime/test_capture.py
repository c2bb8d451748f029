"""Data capture: a live model server writes Parquet parts that read back as a labelled Dataset.

Real models (iris forest, diabetes ridge, a categorical pipeline trained by ``train``), real HTTP
on 127.0.0.1, real files. Format: docs/design/contracts.md, "Data capture".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers_train import mixed_frame, train_config
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sklearn.datasets import load_iris

from kubeloop_runtime import captures
from kubeloop_runtime.config import DatasetSpec, parse_train_config
from kubeloop_runtime.datasets import load_dataset
from kubeloop_runtime.errors import DatasetError
from kubeloop_runtime.serve.capture import (
    CaptureLimits,
    CaptureWriter,
    CpuBudget,
    is_sampled,
    sample_threshold,
    sampled_mask,
)
from kubeloop_runtime.serve.model import Prediction
from kubeloop_runtime.serve.settings import ServeSettings
from kubeloop_runtime.train import run_training
from support import eventually, free_port

if TYPE_CHECKING:  # types only: `conftest` names whichever conftest pytest loaded last
    from conftest import LiveServer, TrainedArtifact

FAST_FLUSH = {"capture_flush_seconds": 0.1}


def parts_in(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob("*.parquet"))


def records(folder: Path) -> pd.DataFrame:
    frames = [pq.read_table(path).to_pandas() for path in parts_in(folder)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def metric(url: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no {name}{labels} in /metrics")


def predict(url: str, rows: np.ndarray[Any, Any]) -> list[str]:
    response = httpx.post(f"{url}/predict", json={"instances": rows.tolist()})
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()["ids"]
    return ids


def feedback(url: str, items: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{url}/feedback", json=items)
    assert response.status_code == 200, response.text


def settle(url: str, predictions: int) -> None:
    """Wait until ``predictions`` rows were written and nothing waits in the queue."""

    def done() -> bool:
        rows = metric(url, "kubeloop_capture_rows_total", record="prediction")
        return rows == predictions and metric(url, "kubeloop_capture_queued_rows") == 0

    eventually(done, what=f"{predictions} captured rows written, queue empty")


def folder_dataset(uri: str) -> pd.DataFrame:
    return load_dataset(DatasetSpec(uri=uri)).frame


# -- the format's pure parts ---------------------------------------------------------------------
def test_part_names_sort_in_time_order_and_parse() -> None:
    start = datetime(2026, 12, 1, 7, 59, 59, 999_999, tzinfo=UTC)
    names = [
        captures.part_name(start + timedelta(microseconds=step), "iris-blue-7d9f-abcde", seq)
        for step, seq in ((0, 9), (1, 10), (2_000_000, 11))
    ]
    assert names == sorted(names)
    assert names[0] == "20261201T075959999999Z-iris-blue-7d9f-abcde-000009.parquet"
    match = captures.PART_NAME.match(names[1])
    assert match is not None
    assert (match.group("pod"), match.group("seq")) == ("iris-blue-7d9f-abcde", "000010")


def test_sampling_is_deterministic_per_row_and_close_to_the_rate() -> None:
    threshold = sample_threshold(0.25)
    mask = sampled_mask(0, 20_000, threshold)
    assert 0.23 < mask.mean() < 0.27
    assert [is_sampled(seq, threshold) for seq in range(500)] == mask[:500].tolist()
    assert sampled_mask(100, 50, threshold).tolist() == mask[100:150].tolist()
    assert sampled_mask(0, 100, sample_threshold(1.0)).all()
    assert not sampled_mask(0, 100, sample_threshold(0.0)).any()


def test_target_type_follows_the_model_values() -> None:
    assert str(captures.target_type([0, 1, 2], "classification")) == "int64"
    assert str(captures.target_type(["no", "yes"], "classification")) == "string"
    assert str(captures.target_type([False, True], "classification")) == "bool"
    assert str(captures.target_type(None, "regression")) == "double"


# -- a live server -------------------------------------------------------------------------------
def test_iris_capture_reads_back_as_the_labelled_rows(
    live_server: Any, iris_artifact: TrainedArtifact, tmp_path: Path
) -> None:
    folder = tmp_path / "captures"
    server: LiveServer = live_server(
        iris_artifact.directory, capture_uri=f"file://{folder}/", pod_name="iris-blue-0",
        model_version="3", **FAST_FLUSH,
    )  # fmt: skip
    rows = iris_artifact.rows[[0, 60, 120, 1, 61]]
    ids = predict(server.url, rows[:3])
    v2 = httpx.post(
        f"{server.url}/v2/models/iris/infer",
        json={"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                          "data": rows[3:].ravel().tolist()}]},
    )  # fmt: skip
    assert v2.status_code == 200
    ids += v2.json()["parameters"]["prediction_ids"]
    # labels by class name and by class code; the last row stays unlabelled
    labels: list[Any] = ["setosa", 1, "virginica", 0]
    feedback(server.url, [{"id": i, "label": label} for i, label in zip(ids, labels, strict=False)])
    settle(server.url, 5)

    written = records(folder)
    first = pq.read_table(parts_in(folder)[0])
    assert first.column_names == [
        "kubeloop.record", "kubeloop.id", "kubeloop.time", "kubeloop.modelVersion",
        *iris_artifact.feature_names, "kubeloop.prediction", "target",
    ]  # fmt: skip
    described = json.loads(first.schema.metadata[b"kubeloop.capture"])
    assert described["pod"] == "iris-blue-0"
    assert described["target"] == "target"
    assert described["features"] == iris_artifact.feature_names
    predictions = written[written[captures.RECORD] == "prediction"].set_index(captures.ID)
    assert sorted(predictions.index) == sorted(ids)
    assert set(predictions[captures.MODEL_VERSION]) == {"3"}
    assert predictions.loc[ids, "kubeloop.prediction"].tolist() == [0, 1, 2, 0, 1]
    np.testing.assert_array_equal(
        predictions.loc[ids, iris_artifact.feature_names].to_numpy(), rows
    )
    names = [captures.PART_NAME.match(path.name) for path in parts_in(folder)]
    assert all(match is not None and match.group("pod") == "iris-blue-0" for match in names)
    assert not list(folder.glob(".*")), "no temporary file is left behind"

    dataset = folder_dataset(f"file://{folder}/")
    assert list(dataset.columns) == [*iris_artifact.feature_names, "target"]
    assert dataset["target"].dtype == np.int64
    assert sorted(dataset["target"].tolist()) == [0, 0, 1, 2]
    assert len(dataset) == 4


def test_a_label_after_its_row_was_flushed_is_still_joined(
    live_server: Any, iris_artifact: TrainedArtifact, tmp_path: Path
) -> None:
    folder = tmp_path / "captures"
    server = live_server(iris_artifact.directory, capture_uri=str(folder), **FAST_FLUSH)
    ids = predict(server.url, iris_artifact.rows[[0, 100]])
    eventually(lambda: metric(server.url, "kubeloop_capture_parts_total") >= 1, what="a part")
    with pytest.raises(DatasetError, match="the dataset has no rows"):
        folder_dataset(f"file://{folder}/")  # nothing labelled yet
    feedback(server.url, [{"id": ids[1], "label": "virginica"}])
    eventually(lambda: metric(server.url, "kubeloop_capture_rows_total", record="feedback") == 1,
               what="the late label written")  # fmt: skip
    written = records(folder)
    late = written[written[captures.RECORD] == "feedback"]
    assert late[captures.ID].tolist() == [ids[1]]
    assert late["target"].tolist() == [2]
    assert late[iris_artifact.feature_names].isna().all().all()
    loaded = load_dataset(DatasetSpec(uri=f"file://{folder}/"))
    assert loaded.rows == 1
    assert loaded.frame["target"].tolist() == [2]
    np.testing.assert_array_equal(
        loaded.frame[iris_artifact.feature_names].to_numpy(), iris_artifact.rows[[100]]
    )
    digest_before = loaded.digest
    # a relabel overrides: the last label in file order wins, and the data version changes
    feedback(server.url, [{"id": ids[1], "label": "versicolor"}, {"id": ids[0], "label": 0}])
    eventually(lambda: metric(server.url, "kubeloop_capture_rows_total", record="feedback") == 3)
    relabelled = load_dataset(DatasetSpec(uri=f"file://{folder}/"))
    assert sorted(relabelled.frame["target"].tolist()) == [0, 1]
    assert relabelled.digest != digest_before


def test_base_data_plus_captures_is_one_growing_table(
    live_server: Any, iris_artifact: TrainedArtifact, tmp_path: Path
) -> None:
    data = tmp_path / "iris-data"
    data.mkdir()
    load_iris(as_frame=True).frame.to_csv(data / "base.csv", index=False)
    base = load_dataset(DatasetSpec(uri=f"file://{data}/"))
    builtin = load_dataset(DatasetSpec(uri="builtin://iris"))
    assert (base.rows, base.digest) == (150, builtin.digest)

    server = live_server(iris_artifact.directory, capture_uri=f"{data}/captures/", **FAST_FLUSH)
    shifted = iris_artifact.rows[:20] + 0.5
    ids = predict(server.url, shifted)
    feedback(server.url, [{"id": i, "label": "setosa"} for i in ids])
    settle(server.url, 20)
    grown = load_dataset(DatasetSpec(uri=f"file://{data}/"))
    assert grown.rows == 170
    assert grown.files == 1 + len(parts_in(data / "captures"))
    assert grown.digest != base.digest
    np.testing.assert_allclose(grown.frame.iloc[150:, :4].to_numpy(), shifted, rtol=0, atol=0)

    # train sees the grown table and records its version
    config = train_config(
        tmp_path / "model",
        dataset={"source": {"uri": f"file://{data}/"}, "target": "target"},
    )
    result = run_training(parse_train_config(config))
    assert result["dataset"] == {
        "uri": f"file://{data}/",
        "digest": grown.digest,
        "rows": 170,
        "files": grown.files,
        "manifest": grown.manifest_digest,
    }


def test_regression_capture_keeps_float_values(
    live_server: Any, diabetes_artifact: TrainedArtifact, tmp_path: Path
) -> None:
    folder = tmp_path / "captures"
    server = live_server(diabetes_artifact.directory, capture_uri=str(folder), **FAST_FLUSH)
    ids = predict(server.url, diabetes_artifact.rows[:3])
    feedback(server.url, [{"id": ids[0], "label": 151.0}, {"id": ids[2], "label": 75}])
    settle(server.url, 3)
    dataset = folder_dataset(f"file://{folder}/")
    assert dataset["target"].tolist() == [151.0, 75.0]
    written = records(folder)
    predicted = written[written[captures.RECORD] == "prediction"]["kubeloop.prediction"]
    assert predicted.dtype == np.float64
    assert len(predicted) == 3
    assert predicted.notna().all()


def test_categorical_model_capture(live_server: Any, tmp_path: Path) -> None:
    frame = mixed_frame()
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    config = train_config(
        tmp_path / "model",
        modelName="mixed",
        dataset={"uri": f"file://{tmp_path}/mixed.csv", "target": "label"},
        evaluation={"testSize": 0.25, "randomSeed": 7},
    )
    run_training(parse_train_config(config))
    folder = tmp_path / "captures"
    server = live_server(tmp_path / "model", capture_uri=str(folder), **FAST_FLUSH)
    instances = [
        {"size": 55.0, "count": 3, "colour": "red", "flag": 1},
        {"size": 40.0, "count": 7, "colour": "blue", "flag": 0},
    ]
    response = httpx.post(f"{server.url}/predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    ids = response.json()["ids"]
    feedback(server.url, [{"id": ids[0], "label": "no"}, {"id": ids[1], "label": "yes"}])
    settle(server.url, 2)
    dataset = folder_dataset(f"file://{folder}/")
    assert list(dataset.columns) == ["size", "count", "colour", "flag", "label"]
    assert dataset["colour"].tolist()[0] == "red"
    assert dataset["colour"].tolist()[1] == "blue"
    assert dataset["label"].tolist() == ["no", "yes"]


def test_sampled_out_rows_and_their_labels_are_not_written(
    live_server: Any, iris_artifact: TrainedArtifact, tmp_path: Path
) -> None:
    folder = tmp_path / "captures"
    server = live_server(
        iris_artifact.directory, capture_uri=str(folder), capture_sample_rate=0.5, **FAST_FLUSH
    )
    ids = predict(server.url, iris_artifact.rows)  # 150 rows, numbered 0..149
    feedback(server.url, [{"id": i, "label": 0} for i in ids])
    kept = [i for i in ids if is_sampled(int(i.rsplit("-", 1)[1]), sample_threshold(0.5))]
    assert 50 < len(kept) < 100
    eventually(lambda: metric(server.url, "kubeloop_capture_rows_total", record="prediction")
               == len(kept))  # fmt: skip
    eventually(lambda: metric(server.url, "kubeloop_capture_queued_rows") == 0)
    written = records(folder)
    assert sorted(written[captures.ID].unique()) == sorted(kept)
    assert len(folder_dataset(f"file://{folder}/")) == len(kept)


def test_a_full_buffer_drops_and_counts_never_fails_a_request(
    live_server: Any, iris_artifact: TrainedArtifact, tmp_path: Path
) -> None:
    folder = tmp_path / "captures"
    server = live_server(
        iris_artifact.directory, capture_uri=str(folder), capture_buffer_rows=5,
        capture_flush_seconds=3600, capture_max_rows_per_part=1000,
    )  # fmt: skip
    for row in iris_artifact.rows[:12]:
        predict(server.url, row[None, :])
    assert metric(server.url, "kubeloop_capture_dropped_total", reason="buffer_full") == 7
    assert metric(server.url, "kubeloop_capture_queued_rows") == 5
    server.stop()  # the shutdown writes what is queued
    assert len(records(folder)) == 5


def test_parts_are_bounded_and_retention_keeps_only_this_pods_newest(
    live_server: Any, iris_artifact: TrainedArtifact, tmp_path: Path
) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    foreign = folder / "20200101T000000000000Z-other-pod-000001.parquet"
    foreign.write_bytes(b"another pod's part")
    old_own = folder / "20200101T000000000000Z-iris-0-000001.parquet"
    old_own.write_bytes(b"x" * 10)
    server = live_server(
        iris_artifact.directory, capture_uri=str(folder), pod_name="iris-0",
        capture_max_rows_per_part=4, capture_max_parts=3, **FAST_FLUSH,
    )  # fmt: skip
    predict(server.url, iris_artifact.rows[:10])  # one batch of 10 rows: 3 parts of <= 4
    settle(server.url, 10)
    predict(server.url, iris_artifact.rows[10:18])
    settle(server.url, 18)
    own = [path for path in parts_in(folder) if "-iris-0-" in path.name]
    assert len(own) == 3
    assert not old_own.exists()
    assert foreign.exists()
    assert all(len(pq.read_table(path)) <= 4 for path in own)


def test_an_unwritable_folder_counts_write_errors_and_serving_goes_on(
    live_server: Any, iris_artifact: TrainedArtifact, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    server = live_server(
        iris_artifact.directory, capture_uri=str(tmp_path / "a-file" / "captures"), **FAST_FLUSH
    )
    predict(server.url, iris_artifact.rows[:3])
    eventually(lambda: metric(server.url, "kubeloop_capture_dropped_total", reason="write_error")
               == 3, what="the write error counted")  # fmt: skip
    predict(server.url, iris_artifact.rows[3:4])


def test_invalid_capture_uri_is_a_settings_error(iris_artifact: TrainedArtifact) -> None:
    with pytest.raises(ValidationError, match="capture needs a writable"):
        ServeSettings(model_dir=iris_artifact.directory, capture_uri="https://example/x/")
    with pytest.raises(ValidationError, match="unsupported URI scheme"):
        ServeSettings(model_dir=iris_artifact.directory, capture_uri="ftp://x/y/")
    assert ServeSettings(model_dir=iris_artifact.directory, capture_uri="").capture_uri is None


@pytest.mark.slow
def test_sigterm_writes_the_queued_records_before_exit(
    iris_artifact: TrainedArtifact, tmp_path: Path
) -> None:
    folder = tmp_path / "captures"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "KUBELOOP_MODEL_DIR": str(iris_artifact.directory),
        "KUBELOOP_HOST": "127.0.0.1",
        "KUBELOOP_PORT": str(port),
        "KUBELOOP_TERMINATION_LOG": str(tmp_path / "termination-log"),
        "KUBELOOP_CAPTURE_URI": f"file://{folder}/",
        "KUBELOOP_CAPTURE_FLUSH_SECONDS": "3600",
        "KUBELOOP_POD_NAME": "iris-green-1",
    }
    process = subprocess.Popen([sys.executable, "-m", "kubeloop_runtime.serve"], env=env)
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/v2/health/ready").status_code == 200
            except httpx.TransportError:
                return process.poll() is not None

        eventually(ready, timeout=60, what="the server ready")
        assert process.poll() is None
        ids = predict(url, iris_artifact.rows[:7])
        feedback(url, [{"id": ids[0], "label": "setosa"}])
        assert parts_in(folder) == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    written = records(folder)
    assert len(written) == 7
    assert all("-iris-green-1-" in path.name for path in parts_in(folder))
    assert folder_dataset(f"file://{folder}/")["target"].tolist() == [0]


def test_the_writer_budget_grows_with_the_serving_threads_cpu() -> None:
    budget = CpuBudget(share=0.5, floor=0.0, burst=10.0)
    budget.available = 0.0
    served = threading.Event()
    seen: list[float] = []

    def writer() -> None:
        budget.refill()  # the writer thread's own clock starts here
        served.wait()
        seen.append(budget.refill())

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.05)
    started = time.thread_time()
    while time.thread_time() - started < 0.2:  # "serving": 0.2 s of CPU on this thread
        sum(range(1000))
    served.set()
    thread.join()
    assert 0.09 <= seen[0] <= 0.2  # half of the 0.2 s (other threads of this process add a bit)


def test_the_writer_keeps_to_its_budget_and_shutdown_writes_the_rest(tmp_path: Path) -> None:
    names = [f"x{index}" for index in range(30)]
    schema = captures.CaptureSchema(
        model="m", model_version="1", pod="pod-0", task="classification",
        features=tuple((name, "number") for name in names), target="target",
        target_type=captures.target_type([0, 1], "classification"),
    )  # fmt: skip
    # Nothing else runs, so the budget grows by the floor alone: 1 ms of CPU per second, about
    # one part of 100 rows per second.
    limits = CaptureLimits(
        flush_seconds=0.01, max_rows_per_part=100, writer_share=0.001,
        writer_floor_share=0.001, writer_burst_seconds=0.0,
    )  # fmt: skip
    writer = CaptureWriter(str(tmp_path), schema, "abcd", limits, [0, 1])
    rows = np.random.default_rng(0).random((1000, 30))
    labels = np.zeros(1000, dtype=np.intp)
    writer.add(0, rows, Prediction(labels.astype(object), labels))
    writer.start()
    time.sleep(0.5)
    assert 1 <= writer.stats.parts < 5
    writer.close()
    assert writer.stats.parts == 10
    assert sum(len(pq.read_table(path)) for path in parts_in(tmp_path)) == 1000
