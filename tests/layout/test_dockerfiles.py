"""What keeps a user's plain `docker build` working: the Dockerfiles' invariants, read as text.

The images themselves are built by hack/images.sh and exercised on the node (tests/node); these
checks catch, in milliseconds, an edit that would make a normal build pull a frontend image, need
BuildKit, depend on this machine's proxy CA, run as root, or send the whole checkout as context.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "operator/Dockerfile": "operator/kubeloop/",
    "serving_image/Dockerfile": "serving_image/kubeloop_runtime/",
}


def instructions(dockerfile: Path) -> list[str]:
    """The instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def allowed(ignore_file: Path) -> set[str]:
    """The re-included paths of an allow-list ignore file (`*`, then `!path` lines)."""
    lines = [line.strip() for line in ignore_file.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*", f"{ignore_file} is not an allow-list"
    return {line[1:] for line in patterns if line.startswith("!")}


@pytest.mark.parametrize("path", sorted(DOCKERFILES))
def test_a_plain_build_needs_no_registry_frontend_buildkit_or_local_ca(path: str) -> None:
    text = (REPO / path).read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    steps = instructions(REPO / path)
    code = "\n".join(steps)
    assert "--mount" not in code
    assert "PIP_CERT" not in code
    assert "ca-certificates.crt" not in code
    assert steps[0] == "ARG BASE_IMAGE=python:3.11-slim-bookworm"


@pytest.mark.parametrize("path", sorted(DOCKERFILES))
def test_the_final_stage_runs_as_the_non_root_user_from_the_base(path: str) -> None:
    steps = instructions(REPO / path)
    final = steps[max(i for i, step in enumerate(steps) if step.startswith("FROM ")) :]
    assert final[0] == "FROM ${BASE_IMAGE}"
    assert "USER 65532:65532" in final
    assert any(step.startswith("ENV ") and "HOME=/tmp" in step for step in final)
    assert any(step.startswith("LABEL org.opencontainers.image.title=") for step in final)
    assert final[-1].startswith(("ENTRYPOINT", "CMD"))


@pytest.mark.parametrize(("path", "package"), sorted(DOCKERFILES.items()))
def test_the_build_context_holds_what_the_dockerfile_copies_and_no_more(
    path: str, package: str
) -> None:
    dockerfile = REPO / path
    own_ignore = dockerfile.parent / "Dockerfile.dockerignore"  # BuildKit's, beside the file
    assert own_ignore.is_symlink()
    assert own_ignore.resolve() == (dockerfile.parent / ".dockerignore").resolve()
    copied = {
        source
        for step in instructions(dockerfile)
        if step.startswith("COPY ") and "--from=" not in step
        for source in step.split()[1:-1]
    }
    assert package in copied
    own = allowed(own_ignore)
    assert copied <= own, f"{path} copies {copied - own}, which its ignore file leaves out"
    assert own <= copied, f"{own_ignore} sends {own - copied}, which {path} never copies"
    # The classic builder reads only the root file: the union of both images' inputs.
    assert copied <= allowed(REPO / ".dockerignore")
