"""Datasets over folders: every CSV and Parquet file under a URI ending in ``/``, as one table.

Rules: docs/design/contracts.md, "Datasets over folders". Real files on disk, a real PVC-style
mount root, the profile entry point as a real process.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from helpers_train import mixed_frame, read_termination, run_cli
from sklearn.datasets import load_iris

from kubeloop_runtime.config import DatasetSpec
from kubeloop_runtime.datasets import content_digest, data_file_format, load_dataset
from kubeloop_runtime.errors import DatasetError, StorageError


def iris() -> pd.DataFrame:
    frame: pd.DataFrame = load_iris(as_frame=True).frame
    return frame


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Iris split over CSV, gzipped CSV and Parquet, nested, with files the reader must skip."""
    frame = iris()
    root = tmp_path / "iris"
    (root / "2026" / "12").mkdir(parents=True)
    (root / ".staging").mkdir()
    frame.iloc[:50].to_csv(root / "a.csv", index=False)
    (root / "b.csv.gz").write_bytes(gzip.compress(frame.iloc[50:100].to_csv(index=False).encode()))
    frame.iloc[100:].to_parquet(root / "2026" / "12" / "c.parquet", index=False)
    # skipped: not a data file, hidden, a temporary file, a _SUCCESS-style marker
    (root / "README.md").write_text("about the data")
    frame.iloc[:5].to_csv(root / ".staging" / "half-written.csv", index=False)
    frame.iloc[:5].to_csv(root / ".d.csv.tmp-1234", index=False)
    frame.iloc[:5].to_csv(root / "_partial.csv", index=False)
    return root


def test_a_folder_reads_as_one_table_with_the_digest_of_that_table(folder: Path) -> None:
    loaded = load_dataset(DatasetSpec(uri=f"file://{folder}/"))
    assert (loaded.format, loaded.files, loaded.rows) == ("folder", 3, 150)
    expected = iris()
    # sorted relative paths: 2026/12/c.parquet, a.csv, b.csv.gz
    order = pd.concat([expected.iloc[100:], expected.iloc[:50], expected.iloc[50:100]])
    pd.testing.assert_frame_equal(loaded.frame, order.reset_index(drop=True))
    assert loaded.digest == content_digest(order.reset_index(drop=True))
    assert load_dataset(DatasetSpec(uri=f"{folder}/")).digest == loaded.digest


def test_one_file_in_a_folder_has_that_files_digest_whatever_its_format(tmp_path: Path) -> None:
    frame = mixed_frame()
    (tmp_path / "csv").mkdir()
    (tmp_path / "parquet").mkdir()
    frame.to_csv(tmp_path / "csv" / "data.csv", index=False)
    frame.to_parquet(tmp_path / "parquet" / "data.parquet", index=False)
    single = load_dataset(DatasetSpec(uri=f"file://{tmp_path}/csv/data.csv")).digest
    assert load_dataset(DatasetSpec(uri=f"file://{tmp_path}/csv/")).digest == single
    assert load_dataset(DatasetSpec(uri=f"file://{tmp_path}/parquet/")).digest == single


def test_a_new_file_is_a_new_data_version(folder: Path) -> None:
    before = load_dataset(DatasetSpec(uri=f"file://{folder}/")).digest
    iris().iloc[:10].to_csv(folder / "z-more.csv", index=False)
    after = load_dataset(DatasetSpec(uri=f"file://{folder}/"))
    assert after.rows == 160
    assert after.digest != before
    (folder / "z-more.csv").unlink()
    assert load_dataset(DatasetSpec(uri=f"file://{folder}/")).digest == before


def test_columns_are_aligned_by_name(tmp_path: Path) -> None:
    frame = iris()
    frame.iloc[:75].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[75:][list(reversed(frame.columns))].to_csv(tmp_path / "b.csv", index=False)
    loaded = load_dataset(DatasetSpec(uri=f"file://{tmp_path}/"))
    pd.testing.assert_frame_equal(loaded.frame, frame)


def test_a_file_with_other_columns_is_named(tmp_path: Path) -> None:
    frame = iris()
    frame.iloc[:75].to_csv(tmp_path / "a.csv", index=False)
    odd = frame.iloc[75:].drop(columns=["petal width (cm)"]).assign(colour="red")
    odd.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DatasetError) as raised:
        load_dataset(DatasetSpec(uri=f"file://{tmp_path}/"))
    assert str(raised.value) == (
        f"file://{tmp_path}/b.csv: its columns differ from those of file://{tmp_path}/a.csv "
        "(a folder's files must have the same columns): missing ['petal width (cm)'], "
        "extra ['colour']"
    )


def test_an_empty_folder_and_a_folder_without_data_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="the folder holds no CSV or Parquet files"):
        load_dataset(DatasetSpec(uri=f"file://{tmp_path}/empty/"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("no data here")
    with pytest.raises(DatasetError, match="the folder holds no CSV or Parquet files"):
        load_dataset(DatasetSpec(uri=f"file://{tmp_path}/docs/"))
    (tmp_path / "headers").mkdir()
    iris().iloc[:0].to_csv(tmp_path / "headers" / "a.csv", index=False)
    with pytest.raises(DatasetError, match="the dataset has no rows"):
        load_dataset(DatasetSpec(uri=f"file://{tmp_path}/headers/"))
    with pytest.raises(StorageError, match="no such folder"):
        load_dataset(DatasetSpec(uri=f"file://{tmp_path}/missing/"))
    with pytest.raises(StorageError, match="cannot be listed"):
        load_dataset(DatasetSpec(uri="https://127.0.0.1:1/data/"))


def test_a_declared_format_reads_only_those_files(folder: Path) -> None:
    parquet = load_dataset(DatasetSpec(uri=f"file://{folder}/", format="parquet"))
    assert (parquet.files, parquet.rows) == (1, 50)
    assert load_dataset(DatasetSpec(uri=f"file://{folder}/", format="csv")).files == 2
    assert data_file_format("x/DATA.CSV.GZ", "auto") == "csv"
    assert data_file_format("x/_tmp/data.parquet", "auto") is None
    assert data_file_format("data.json", "auto") is None


def test_a_pvc_folder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBELOOP_PVC_ROOT", str(folder.parent.parent))
    claim_path = f"pvc://{folder.parent.name}/iris/"
    loaded = load_dataset(DatasetSpec(uri=claim_path))
    assert loaded.rows == 150
    assert loaded.uri == claim_path


def test_profile_reports_a_folders_version(folder: Path, tmp_path: Path) -> None:
    log = tmp_path / "termination"
    config = {"dataset": {"source": {"uri": f"file://{folder}/"}, "target": "target"}}
    done = run_cli("profile", "--config", json.dumps(config), "--termination-log", str(log))
    assert done.returncode == 0, done.stderr
    result = read_termination(log)
    assert (result["format"], result["files"], result["rows"]) == ("folder", 3, 150)
    assert result["digest"] == load_dataset(DatasetSpec(uri=f"file://{folder}/")).digest
    assert [column["name"] for column in result["columns"]][-1] == "target"
    assert result["profile"]["rows"] == 150
    # a folder with a file of other columns fails the profile run with the file named
    iris().iloc[:3, :2].to_csv(folder / "zz.csv", index=False)
    done = run_cli("profile", "--config", json.dumps(config), "--termination-log", str(log))
    assert done.returncode == 4
    failed = read_termination(log)
    assert failed["reason"] == "DatasetError"
    assert f"file://{folder}/zz.csv: its columns differ" in failed["message"]
