"""requirements.txt is compiled from requirements.in and agrees with it (checked offline)."""

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def direct_requirements():
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / "requirements.in").read_text().splitlines())
    return {canonicalize_name(req.name): req for req in map(Requirement, filter(None, lines))}


def locked():
    """{name: (version, set of 'via' sources)} from uv's annotated output."""
    pins, current = {}, None
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (match.group(2), set())
        elif current and (via := re.match(r"^\s+#\s+(?:via\s+)?(\S.*)$", line)) and via.group(1) != "via":
            pins[current][1].add(via.group(1).strip())
    return pins


def test_every_direct_requirement_is_pinned_within_its_range():
    pins = locked()
    for name, req in direct_requirements().items():
        assert name in pins, f"{name} is in requirements.in but not in requirements.txt: run inv dev.lock"
        version = pins[name][0]
        assert req.specifier.contains(version, prereleases=True), f"{name}=={version} is outside '{req.specifier}'"


def test_requirements_txt_names_exactly_the_direct_requirements_as_from_requirements_in():
    from_in = {name for name, (_, via) in locked().items() if "-r requirements.in" in via}
    assert from_in == set(direct_requirements()), "requirements.txt is stale: run inv dev.lock"


def test_every_line_is_pinned_and_the_launcher_has_no_torch():
    pins = locked()
    assert pins and "torch" not in pins and "sam3" not in pins
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.lstrip().startswith("#"):
            assert "==" in line, line
