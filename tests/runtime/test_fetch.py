"""The storage initializer: copy an artifact folder, verify it, and leave nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers_train import read_termination, run_cli, serve_folder

from kubeloop_runtime.errors import ConfigError, FetchError
from kubeloop_runtime.fetch import ARTIFACT_FILES, fetch_artifact, main


@pytest.fixture(scope="module")
def source(iris_artifact: Any) -> tuple[Path, str]:
    """A real artifact folder: conftest's iris random forest, shared with the serve tests."""
    return iris_artifact.directory, iris_artifact.digest


def copy_of(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in ARTIFACT_FILES:
        (target / name).write_bytes((source / name).read_bytes())
    return target


def entries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_fetch_into_a_new_folder(source: tuple[Path, str], tmp_path: Path) -> None:
    folder, digest = source
    dest = tmp_path / "mnt" / "models"
    result = fetch_artifact(f"file://{folder}", dest, digest)
    assert result == {
        "ok": True,
        "kind": "fetch",
        "uri": f"file://{folder}",
        "dest": str(dest),
        "digest": digest,
        "files": list(ARTIFACT_FILES),
    }
    assert entries(dest) == sorted(ARTIFACT_FILES)
    assert entries(dest.parent) == ["models"]
    for name in ARTIFACT_FILES:
        assert (dest / name).read_bytes() == (folder / name).read_bytes()


def test_fetch_into_an_existing_mount_point(source: tuple[Path, str], tmp_path: Path) -> None:
    folder, digest = source
    dest = tmp_path / "models"
    dest.mkdir()  # an emptyDir volume: exists, cannot be replaced by a rename
    fetch_artifact(str(folder), dest, digest)
    assert entries(dest) == sorted(ARTIFACT_FILES)


def test_wrong_digest_leaves_nothing(source: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = source
    wrong = "sha256:" + "0" * 64
    new_dest = tmp_path / "new" / "models"
    with pytest.raises(FetchError, match=r"model\.joblib: digest mismatch: expected sha256:0000"):
        fetch_artifact(str(folder), new_dest, wrong)
    assert entries(new_dest.parent) == []
    mount = tmp_path / "mount"
    mount.mkdir()
    with pytest.raises(FetchError):
        fetch_artifact(str(folder), mount, wrong)
    assert entries(mount) == []


def test_missing_file_is_named_and_leaves_nothing(source: tuple[Path, str], tmp_path: Path) -> None:
    folder, digest = source
    broken = copy_of(folder, tmp_path / "broken")
    (broken / "metadata.json").unlink()
    dest = tmp_path / "dest"
    with pytest.raises(FetchError, match=r"cannot fetch metadata\.json: .*no such file"):
        fetch_artifact(str(broken), dest, digest)
    assert not dest.exists()
    assert entries(tmp_path) == ["broken"]


def test_tampered_model_is_refused_even_without_an_expected_digest(
    source: tuple[Path, str], tmp_path: Path
) -> None:
    folder, _ = source
    tampered = copy_of(folder, tmp_path / "tampered")
    with (tampered / "model.joblib").open("ab") as stream:
        stream.write(b"\x00")
    with pytest.raises(FetchError, match=r"model\.sha256 says sha256:.*model\.joblib has"):
        fetch_artifact(str(tampered), tmp_path / "dest", None)
    assert not (tmp_path / "dest").exists()


def test_metadata_describing_another_model_is_refused(
    source: tuple[Path, str], tmp_path: Path
) -> None:
    folder, digest = source
    swapped = copy_of(folder, tmp_path / "swapped")
    metadata = json.loads((swapped / "metadata.json").read_text())
    metadata["artifact"]["digest"] = "sha256:" + "1" * 64
    (swapped / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(FetchError, match=r"metadata\.json: artifact\.digest is sha256:1111"):
        fetch_artifact(str(swapped), tmp_path / "dest", digest)


def test_malformed_expected_digest(source: tuple[Path, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--digest: expected sha256:<64 lowercase hex>"):
        fetch_artifact(str(source[0]), tmp_path / "dest", "md5:abc")


def test_unwritable_destination_is_a_fetch_error(source: tuple[Path, str], tmp_path: Path) -> None:
    folder, digest = source
    taken = tmp_path / "taken"
    taken.write_text("a file where the destination's parent should be")
    with pytest.raises(FetchError, match=r"--dest .*taken/models: cannot write the artifact"):
        fetch_artifact(str(folder), taken / "models", digest)
    assert entries(tmp_path) == ["taken"]


def test_fetch_over_http_on_loopback(source: tuple[Path, str], tmp_path: Path) -> None:
    folder, digest = source
    with serve_folder(folder.parent) as base:
        result = fetch_artifact(f"{base}/{folder.name}", tmp_path / "models", digest)
        with pytest.raises(FetchError, match=r"cannot fetch model\.joblib: .*no such file"):
            fetch_artifact(f"{base}/absent", tmp_path / "other", digest)
    assert result["digest"] == digest
    assert (tmp_path / "models" / "model.joblib").read_bytes() == (
        folder / "model.joblib"
    ).read_bytes()
    assert not (tmp_path / "other").exists()


def test_main_reports_failure_with_exit_5(source: tuple[Path, str], tmp_path: Path) -> None:
    log = tmp_path / "termination"
    code = main(
        [
            "--uri",
            str(source[0]),
            "--dest",
            str(tmp_path / "models"),
            "--digest",
            "sha256:" + "f" * 64,
            "--termination-log",
            str(log),
        ]
    )
    assert code == 5
    result = read_termination(log)
    assert result["ok"] is False
    assert result["reason"] == "FetchError"
    assert "digest mismatch" in result["message"]


def test_fetch_as_a_real_process(source: tuple[Path, str], tmp_path: Path) -> None:
    folder, digest = source
    log = tmp_path / "termination"
    done = run_cli(
        "fetch",
        "--uri",
        f"file://{folder}",
        "--dest",
        str(tmp_path / "models"),
        "--termination-log",
        str(log),
        env={"KUBELOOP_MODEL_DIGEST": digest},
    )
    assert done.returncode == 0, done.stderr
    assert read_termination(log)["digest"] == digest
    assert entries(tmp_path / "models") == sorted(ARTIFACT_FILES)
