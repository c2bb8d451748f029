"""The growing-folder race: profile records the files it read (the manifest), train reads exactly
those files and checks the pinned data version, so a file that arrives after profiling is not
trained on, and a file that changed or vanished fails with a clear error.

Real files on disk, the real profile and train entry points (in-process and as a real process).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers_train import read_termination, run_cli, train_config
from sklearn.datasets import load_iris

from kubeloop_runtime.config import DatasetSpec, parse_profile_config, parse_train_config
from kubeloop_runtime.datasets import load_dataset, manifest_digest
from kubeloop_runtime.errors import EXIT_DATA, DatasetError, DataVersionError
from kubeloop_runtime.profile_job import MANIFEST_FILE, run_profile
from kubeloop_runtime.train import run_training


def iris() -> pd.DataFrame:
    frame: pd.DataFrame = load_iris(as_frame=True).frame
    return frame


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Iris in two CSV files: the base data of a folder that keeps growing."""
    root = tmp_path / "data"
    root.mkdir()
    frame = iris()
    frame.iloc[:100].to_csv(root / "a.csv", index=False)
    frame.iloc[100:140].to_csv(root / "b.csv", index=False)
    return root


def profile(folder: Path, output: Path | None) -> dict[str, Any]:
    document: dict[str, Any] = {"dataset": {"uri": f"file://{folder}/", "target": "target"}}
    if output is not None:
        document["output"] = {"uri": f"file://{output}"}
    return run_profile(parse_profile_config(document))


def pinned_dataset(folder: Path, result: dict[str, Any]) -> dict[str, Any]:
    """The train config's dataset as the operator writes it: the spec, the pinned version and
    the manifest of that version."""
    return {
        "uri": f"file://{folder}/",
        "target": "target",
        "version": result["digest"],
        "manifest": result["manifest"],
    }


def test_profile_lists_the_files_it_read_and_writes_manifest_json(
    folder: Path, tmp_path: Path
) -> None:
    result = profile(folder, tmp_path / "out")
    manifest = result["manifest"]
    assert manifest["files"] == 2
    assert manifest["uri"] == f"file://{tmp_path / 'out'}/{MANIFEST_FILE}"
    entries = manifest["entries"]  # two files: small enough to be inline
    assert [entry["path"] for entry in entries] == ["a.csv", "b.csv"]
    assert entries[0]["size"] == (folder / "a.csv").stat().st_size
    assert all(entry["digest"].startswith("sha256:") for entry in entries)
    document = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert document["files"] == entries
    assert document["version"] == result["digest"]
    assert document["digest"] == manifest["digest"]


def test_a_large_manifest_stays_out_of_the_result_and_train_reads_it_from_its_uri(
    tmp_path: Path,
) -> None:
    root = tmp_path / "many"
    root.mkdir()
    frame = iris()
    for part in range(30):  # 30 parts of 5 rows: far over the inline budget
        frame.iloc[part * 5 : part * 5 + 5].to_csv(root / f"part-{part:04d}.csv", index=False)
    result = profile(root, tmp_path / "out")
    assert result["manifest"]["files"] == 30
    assert "entries" not in result["manifest"]
    (root / "part-9999.csv").write_text(frame.iloc[:5].to_csv(index=False))  # arrives later
    spec = DatasetSpec.model_validate(pinned_dataset(root, result))
    loaded = load_dataset(spec)
    assert (loaded.files, loaded.rows, loaded.digest) == (30, 150, result["digest"])
    # The profile's manifest.json removed (a cleaned artifact store): the version is gone.
    (tmp_path / "out" / MANIFEST_FILE).unlink()
    with pytest.raises(DataVersionError, match="file list of the pinned data version"):
        load_dataset(spec)


def test_a_file_added_after_profiling_is_not_read_by_train(folder: Path, tmp_path: Path) -> None:
    result = profile(folder, tmp_path / "profile")
    assert result["rows"] == 140
    # Serving captures keep landing in the folder after the profile.
    iris().iloc[140:].to_csv(folder / "c.csv", index=False)
    assert load_dataset(DatasetSpec(uri=f"file://{folder}/", target="target")).rows == 150

    config = train_config(
        tmp_path / "model",
        dataset=pinned_dataset(folder, result),
        params={"n_estimators": 10},
    )
    trained = run_training(parse_train_config(config))
    assert trained["dataset"]["digest"] == result["digest"]  # the pinned version, exactly
    assert trained["dataset"]["rows"] == 140
    assert trained["dataset"]["files"] == 2
    assert trained["dataset"]["manifest"] == result["manifest"]["digest"]
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metadata["dataset"]["rows"] == 140
    assert metadata["evaluation"]["trainRows"] + metadata["evaluation"]["testRows"] == 140


def test_a_changed_file_fails_train_with_a_clear_message(folder: Path, tmp_path: Path) -> None:
    result = profile(folder, None)  # no output: the whole manifest is inline
    iris().iloc[100:120].to_csv(folder / "b.csv", index=False)  # rewritten in place
    output = tmp_path / "model"
    log = tmp_path / "termination-log"
    config = train_config(output, dataset=pinned_dataset(folder, result))
    completed = run_cli(
        "train", "--config", json.dumps(config), "--termination-log", str(log), timeout=180
    )
    assert completed.returncode == EXIT_DATA
    message = read_termination(log)
    assert message["ok"] is False
    assert message["reason"] == "DataVersionGone"
    assert f"{folder}/b.csv: the file changed since profiling" in message["message"]
    assert "Refresh the Dataset" in message["message"]
    assert not output.exists()


def test_a_vanished_file_fails_with_the_data_version_gone(folder: Path) -> None:
    result = profile(folder, None)
    (folder / "a.csv").unlink()
    with pytest.raises(DataVersionError, match=r"a\.csv: the file vanished since profiling"):
        load_dataset(DatasetSpec.model_validate(pinned_dataset(folder, result)))


def test_an_edited_manifest_is_refused(folder: Path) -> None:
    result = profile(folder, None)
    dataset = pinned_dataset(folder, result)
    dataset["manifest"]["entries"] = dataset["manifest"]["entries"][:1]  # a truncated list
    with pytest.raises(DatasetError, match="truncated or edited manifest"):
        load_dataset(DatasetSpec.model_validate(dataset))


def test_without_a_manifest_the_pinned_version_is_still_checked(
    folder: Path, tmp_path: Path
) -> None:
    """A Dataset profiled before manifests existed: train reads the folder as it is now, and
    refuses to train when that is not the pinned version."""
    result = profile(folder, None)
    spec = {"uri": f"file://{folder}/", "target": "target", "version": result["digest"]}
    assert load_dataset(DatasetSpec.model_validate(spec)).digest == result["digest"]
    iris().iloc[140:].to_csv(folder / "c.csv", index=False)
    with pytest.raises(DataVersionError, match="not the pinned version"):
        load_dataset(DatasetSpec.model_validate(spec))


def test_single_files_and_builtin_datasets_check_their_pinned_version(tmp_path: Path) -> None:
    builtin = load_dataset(DatasetSpec(uri="builtin://iris"))
    assert load_dataset(DatasetSpec(uri="builtin://iris", version=builtin.digest)).rows == 150
    path = tmp_path / "iris.csv"
    iris().to_csv(path, index=False)
    pinned = load_dataset(DatasetSpec(uri=str(path))).digest
    assert load_dataset(DatasetSpec(uri=str(path), version=pinned)).digest == pinned
    iris().iloc[:100].to_csv(path, index=False)
    with pytest.raises(DataVersionError, match="not the pinned version"):
        load_dataset(DatasetSpec(uri=str(path), version=pinned))


def test_the_manifest_digest_covers_path_size_and_content(folder: Path) -> None:
    entries = load_dataset(DatasetSpec(uri=f"{folder}/")).manifest
    renamed = (entries[0].model_copy(update={"path": "z.csv"}), *entries[1:])
    resized = (entries[0].model_copy(update={"size": entries[0].size + 1}), *entries[1:])
    assert len({manifest_digest(entries), manifest_digest(renamed), manifest_digest(resized)}) == 3
