"""Loading datasets from every supported URI kind, and the format-independent content digest."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers_train import mixed_frame, serve_folder

from kubeloop_runtime.config import DatasetSpec
from kubeloop_runtime.datasets import (
    BUILTIN_DATASETS,
    content_digest,
    detect_format,
    load_dataset,
)
from kubeloop_runtime.errors import DatasetError, StorageError
from kubeloop_runtime.storage import resolve


def load(uri: str, file_format: str = "auto") -> pd.DataFrame:
    return load_dataset(DatasetSpec.model_validate({"uri": uri, "format": file_format})).frame


@pytest.fixture
def tables(tmp_path: Path) -> Path:
    """The same mixed table as CSV, Parquet, gzipped CSV and extension-less Parquet."""
    frame = mixed_frame()
    frame.to_csv(tmp_path / "data.csv", index=False)
    frame.to_parquet(tmp_path / "data.parquet", index=False)
    (tmp_path / "data.csv.gz").write_bytes(gzip.compress((tmp_path / "data.csv").read_bytes()))
    (tmp_path / "blob").write_bytes((tmp_path / "data.parquet").read_bytes())
    return tmp_path


def test_builtin_datasets_load_with_their_class_names() -> None:
    iris = load_dataset(DatasetSpec(uri="builtin://iris"))
    assert iris.format == "builtin"
    assert iris.rows == 150
    assert iris.default_target == "target"
    assert iris.target_names == ("setosa", "versicolor", "virginica")
    assert list(iris.frame.columns)[-1] == "target"
    diabetes = load_dataset(DatasetSpec(uri="builtin://diabetes"))
    assert diabetes.target_names is None
    assert set(BUILTIN_DATASETS) == {"iris", "wine", "breast_cancer", "diabetes", "digits"}


def test_unknown_builtin_is_named() -> None:
    with pytest.raises(
        DatasetError, match="builtin://mnist: unknown builtin dataset; choose one of"
    ):
        load_dataset(DatasetSpec(uri="builtin://mnist"))


def test_csv_and_parquet_of_the_same_table_have_the_same_digest(tables: Path) -> None:
    digests = {
        name: load_dataset(DatasetSpec(uri=f"file://{tables / name}")).digest
        for name in ("data.csv", "data.parquet", "data.csv.gz", "blob")
    }
    assert len(set(digests.values())) == 1, digests
    assert load_dataset(DatasetSpec(uri=str(tables / "data.csv"))).digest == digests["data.csv"]
    # and the same as hashing the table in memory
    assert content_digest(mixed_frame()) == digests["data.csv"]


def test_digest_changes_with_any_value_or_name() -> None:
    frame = mixed_frame()
    base = content_digest(frame)
    changed = frame.copy()
    changed.loc[3, "size"] = changed.loc[3, "size"] + 0.001
    renamed = frame.rename(columns={"count": "total"})
    text = frame.copy()
    text.loc[5, "colour"] = "purple"
    null_vs_empty = frame.copy()
    null_vs_empty["colour"] = null_vs_empty["colour"].fillna("")
    reordered = frame[list(reversed(frame.columns))]
    digests = {content_digest(item) for item in (changed, renamed, text, null_vs_empty, reordered)}
    assert base not in digests
    assert len(digests) == 5


def test_int_and_float_spellings_of_a_number_are_the_same_data() -> None:
    ints = pd.DataFrame({"x": [1, 2, 3], "y": [0.0, -0.0, 1.5]})
    floats = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.0, 0.0, 1.5]})
    assert content_digest(ints) == content_digest(floats)


def test_pvc_uri_maps_to_the_claim_mount(tables: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    claim = tables / "training-data" / "sets"
    claim.mkdir(parents=True)
    (tables / "data.csv").rename(claim / "people.csv")
    monkeypatch.setenv("KUBELOOP_PVC_ROOT", str(tables))
    loaded = load_dataset(DatasetSpec(uri="pvc://training-data/sets/people.csv"))
    assert loaded.rows == 120
    assert loaded.format == "csv"
    assert resolve("pvc://c/x.csv", pvc_root="/mnt/pvc").path == "/mnt/pvc/c/x.csv"


def test_https_loading_over_loopback(tables: Path) -> None:
    with serve_folder(tables) as base:
        by_extension = load_dataset(DatasetSpec(uri=f"{base}/data.parquet"))
        by_content = load_dataset(DatasetSpec(uri=f"{base}/blob"))
        csv = load_dataset(DatasetSpec(uri=f"{base}/data.csv"))
        with pytest.raises(StorageError, match=r"/nothing\.csv: no such file"):
            load(f"{base}/nothing.csv")
    assert by_extension.format == "parquet"
    assert by_content.format == "parquet"
    assert csv.format == "csv"
    assert by_extension.digest == by_content.digest == csv.digest
    assert list(csv.frame.columns) == ["size", "count", "colour", "flag", "label"]


def test_s3_without_s3fs_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # No S3 service can run here. What can be tested is the code path's first step: without the
    # optional s3fs package (hidden here even if installed), the error says what to install.
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(
        StorageError, match=r"s3://bucket/data\.csv: s3:// URIs need the s3fs package"
    ):
        load("s3://bucket/data.csv")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://host/data.csv", "unsupported URI scheme 'ftp'"),
        ("data.csv", "unsupported URI scheme '\\(none\\)'"),
        ("file://relative/data.csv", "a file URI needs an absolute path"),
        ("pvc://claim-only", "a PVC URI is pvc://<claim>/<path>"),
        ("s3:///key", "an S3 URI is s3://<bucket>/<key>"),
    ],
)
def test_bad_uris_are_refused(uri: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        load(uri)


def test_missing_file_and_unparsable_content(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no such file"):
        load(f"file://{tmp_path}/absent.csv")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DatasetError, match=r"broken\.parquet: cannot parse as parquet"):
        load(str(tmp_path / "broken.parquet"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match=r"empty\.csv: the file is empty"):
        load(str(tmp_path / "empty.csv"))
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(DatasetError, match=r"header\.csv: the dataset has no rows"):
        load(str(tmp_path / "header.csv"))


def test_declared_format_wins_over_the_extension(tables: Path) -> None:
    assert detect_format("x.csv", "parquet", b"") == "parquet"
    assert detect_format("https://h/x.csv?sig=1", "auto", b"") == "csv"
    assert detect_format("x.pq", "auto", b"") == "parquet"
    assert load(str(tables / "blob"), "parquet").shape == (120, 5)
