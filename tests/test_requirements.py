"""requirements.txt (what `inv` needs to run) and requirements-dev.txt (tests, lint, re-locking) are
compiled from their .in files and agree with them (checked offline); the runtime set holds no
development tool and no torch, and both sets install together."""

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SETS = ("requirements", "requirements-dev")
DEV_TOOLS = ("pytest", "ruff", "moto", "cfn-lint", "sympy")


def direct_requirements(name: str):
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / f"{name}.in").read_text().splitlines())
    specs = [line for line in lines if line and not line.startswith("-")]  # -c requirements.txt is no package
    return {canonicalize_name(req.name): req for req in map(Requirement, specs)}


def locked(name: str):
    """{name: (version, set of 'via' sources)} from uv's annotated output."""
    pins, current = {}, None
    for line in (ROOT / f"{name}.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (match.group(2), set())
        elif current and (via := re.match(r"^\s+#\s+(?:via\s+)?(\S.*)$", line)) and via.group(1) != "via":
            pins[current][1].add(via.group(1).strip())
    return pins


@pytest.mark.parametrize("name", SETS)
def test_every_direct_requirement_is_pinned_within_its_range(name):
    pins = locked(name)
    for package, req in direct_requirements(name).items():
        assert package in pins, f"{package} is in {name}.in but not in {name}.txt: run inv dev.lock"
        version = pins[package][0]
        assert req.specifier.contains(version, prereleases=True), f"{package}=={version} is outside '{req.specifier}'"


@pytest.mark.parametrize("name", SETS)
def test_the_lock_names_exactly_the_direct_requirements_as_from_its_in_file(name):
    from_in = {package for package, (_, via) in locked(name).items() if f"-r {name}.in" in via}
    assert from_in == set(direct_requirements(name)), f"{name}.txt is stale: run inv dev.lock"


def test_the_runtime_set_is_pinned_and_has_no_torch_and_no_development_tool():
    pins = locked("requirements")
    assert pins and "torch" not in pins and "sam3" not in pins
    assert not [tool for tool in DEV_TOOLS if tool in pins], "a development tool in what every user installs"
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.lstrip().startswith("#"):
            assert "==" in line, line


def test_both_sets_install_together():
    runtime, dev = locked("requirements"), locked("requirements-dev")
    clashes = {
        name: (runtime[name][0], dev[name][0])
        for name in runtime.keys() & dev.keys()
        if runtime[name][0] != dev[name][0]
    }
    assert clashes == {}, f"{clashes}: run inv dev.lock (requirements-dev.in is constrained by requirements.txt)"
