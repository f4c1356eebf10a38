"""env.submodules with real git: local bare repositories stand in for GitHub through git's URL
rewriting (url.<file:///...>.insteadOf https://github.com/) in a temporary global git config, and a
superproject made in a temporary folder records gitlinks to their commits."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_inv

from tasks.lib.core.errors import ConfigError
from tasks.lib.core.report import FAIL, PASS, WARN
from tasks.lib.env import submodules


def inv(args, env, cwd=ROOT, timeout=120):
    """The real inv command line in a subprocess."""
    return run_inv(args, env, cwd=cwd, timeout=timeout)


def git(*args, cwd=None, env=None):
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class World:
    """Bare repositories for GitHub, a global git config that rewrites to them, and a superproject."""

    def __init__(self, base: Path, environ: dict):
        self.base, self.environ = base, environ
        self.remotes = base / "remotes"
        self.base_url = ""
        self.commits: dict[str, list[str]] = {}
        for pin in submodules.PINS:
            owner_repo = pin.url.removeprefix("https://github.com/")
            source = base / "sources" / pin.path
            git("init", "-q", str(source), env=environ)
            for number in (1, 2):
                (source / "README").write_text(f"{pin.path} {number}\n")
                git("add", "README", cwd=source, env=environ)
                git("commit", "-q", "-m", f"commit {number}", cwd=source, env=environ)
                self.commits.setdefault(pin.path, []).append(git("rev-parse", "HEAD", cwd=source, env=environ))
            git("clone", "-q", "--bare", str(source), str(self.remotes / owner_repo), env=environ)
        self.pins = tuple(submodules.Submodule(p.path, p.url, self.commits[p.path][0]) for p in submodules.PINS)

    def superproject(self, root: Path) -> Path:
        """A git repository with our .gitmodules and gitlinks at each stand-in's first commit."""
        git("init", "-q", str(root), env=self.environ)
        shutil.copy(ROOT / ".gitmodules", root / ".gitmodules")
        for pin in self.pins:
            git("update-index", "--add", "--cacheinfo", f"160000,{pin.commit},{pin.path}", cwd=root, env=self.environ)
        git("add", ".gitmodules", cwd=root, env=self.environ)
        git("commit", "-q", "-m", "submodules", cwd=root, env=self.environ)
        return root

    def rewrite_to(self, base_url: str) -> None:
        """Point https://github.com/ at base_url (and nowhere else) in the global git config."""
        config = self.environ["GIT_CONFIG_GLOBAL"]
        if self.base_url:
            git("config", "--file", config, "--remove-section", f"url.{self.base_url}")
        git("config", "--file", config, f"url.{base_url}.insteadOf", "https://github.com/")
        self.base_url = base_url


@pytest.fixture
def world(tmp_path, monkeypatch, clean_env):
    environ = {k: v for k, v in clean_env.items() if not k.startswith("GIT_")}
    environ.update(GIT_CONFIG_GLOBAL=str(tmp_path / "gitconfig"), GIT_CONFIG_NOSYSTEM="1")
    for key, value in (
        ("user.name", "test"),
        ("user.email", "test@example.com"),
        ("init.defaultBranch", "main"),
        ("protocol.file.allow", "always"),
    ):
        git("config", "--file", environ["GIT_CONFIG_GLOBAL"], key, value)
    result = World(tmp_path, environ)
    result.rewrite_to(f"file://{result.remotes}/")
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    for key in ("HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM"):
        monkeypatch.setenv(key, environ[key])
    return result


def by_path(result):
    return {check.subject: check for check in result.checks}


def test_gitmodules_declares_the_pinned_github_repositories():
    text = (ROOT / ".gitmodules").read_text()
    for pin in submodules.PINS:
        assert f'[submodule "{pin.path}"]' in text and f"path = {pin.path}" in text and f"url = {pin.url}" in text
        assert len(pin.commit) == 40 and int(pin.commit, 16) >= 0
        assert pin.url.startswith("https://github.com/")


def test_absent_submodules_are_checked_out_at_their_pins(world, tmp_path):
    root = world.superproject(tmp_path / "super")
    result = submodules.sync(root, world.pins)
    assert not result.failed, result.checks
    assert result.steps == [f"git submodule update --init -- {p.path}" for p in world.pins]
    for pin in world.pins:
        assert git("rev-parse", "HEAD", cwd=root / pin.path) == pin.commit
        assert by_path(result)[pin.path].status == PASS


def test_at_the_pins_a_second_run_is_a_quick_no_op(world, tmp_path):
    root = world.superproject(tmp_path / "super")
    submodules.sync(root, world.pins)
    config_before = (root / ".git" / "config").read_text()
    started = time.perf_counter()
    result = submodules.sync(root, world.pins)
    elapsed = time.perf_counter() - started
    assert result.steps == [] and not result.failed
    assert {c.status for c in result.checks} == {PASS}
    assert elapsed < 2, elapsed
    assert (root / ".git" / "config").read_text() == config_before


def test_moved_off_the_pin_is_named_with_the_fix_and_force_moves_it_back(world, tmp_path):
    root = world.superproject(tmp_path / "super")
    submodules.sync(root, world.pins)
    pin, moved = world.commits["sam3"]
    git("checkout", "-q", moved, cwd=root / "sam3")

    result = submodules.sync(root, world.pins)
    check = by_path(result)["sam3"]
    assert result.failed and check.status == FAIL
    assert f"at {moved[:12]}, pinned at {pin[:12]}" in check.detail
    assert f"git -C sam3 checkout {pin}" in check.fix and "inv env.submodules --force" in check.fix
    assert by_path(result)["GLIP"].status == PASS  # the others are untouched

    dry = submodules.sync(root, world.pins, force=True, dry_run=True)
    assert dry.steps == [f"cd sam3 && git checkout --quiet --force --detach {pin}"]
    assert git("rev-parse", "HEAD", cwd=root / "sam3") == moved  # a dry run changes nothing

    fixed = submodules.sync(root, world.pins, force=True)
    assert not fixed.failed and git("rev-parse", "HEAD", cwd=root / "sam3") == pin


def test_force_fetches_a_pin_the_checkout_does_not_have(world, tmp_path):
    root = world.superproject(tmp_path / "super")
    submodules.sync(root, world.pins)
    source = tmp_path / "sources" / "GLIP"
    (source / "README").write_text("GLIP 3\n")
    git("commit", "-q", "-am", "commit 3", cwd=source, env=world.environ)
    newer = git("rev-parse", "HEAD", cwd=source)
    git("push", "-q", str(world.remotes / "microsoft" / "GLIP.git"), "HEAD:main", cwd=source, env=world.environ)
    pins = tuple(submodules.Submodule(p.path, p.url, newer if p.path == "GLIP" else p.commit) for p in world.pins)

    result = submodules.sync(root, pins, force=True)
    assert not result.failed, result.checks
    assert f"cd GLIP && git fetch --quiet origin {newer}" in result.steps
    assert git("rev-parse", "HEAD", cwd=root / "GLIP") == newer
    assert "the superproject records" in by_path(result)["GLIP"].detail  # the gitlink still says the old one
    assert f"160000,{newer},GLIP" in by_path(result)["GLIP"].fix


def test_unreachable_remote_is_one_line_naming_the_url_and_leaves_nothing_behind(world, tmp_path):
    root = world.superproject(tmp_path / "super")
    world.rewrite_to(f"file://{tmp_path}/nowhere/")
    result = submodules.sync(root, world.pins)
    assert result.failed
    message = result.fetch_error
    assert "\n" not in message
    assert message.startswith("could not fetch sam3 from https://github.com/facebookresearch/sam3.git")
    assert "insteadOf" in message and "inv env.submodules" in message
    for pin in world.pins:
        assert not (root / pin.path).exists()
        assert not (root / ".git" / "modules" / pin.path).exists()
        assert subprocess.run(["git", "config", f"submodule.{pin.path}.url"], cwd=root).returncode == 1
        assert by_path(result)[pin.path].status == FAIL


def test_a_file_mirror_that_git_refuses_says_how_to_allow_it(world, tmp_path):
    root = world.superproject(tmp_path / "super")
    git("config", "--global", "protocol.file.allow", "user", env=world.environ)
    result = submodules.sync(root, world.pins[:1])
    assert "protocol.file.allow" in result.fetch_error and "git config --global protocol.file.allow always" in (
        result.fetch_error
    )
    assert not (root / "sam3").exists()


def test_missing_gitlink_a_stray_folder_and_local_changes(world, tmp_path):
    root = world.superproject(tmp_path / "super")
    git("rm", "-q", "--cached", "rf100-vl", cwd=root)
    (root / "GLIP").mkdir()
    (root / "GLIP" / "notes.txt").write_text("mine\n")
    result = submodules.sync(root, world.pins)
    checks = by_path(result)
    assert checks["sam3"].status == PASS
    assert checks["rf100-vl"].status == FAIL
    assert f"git update-index --add --cacheinfo 160000,{world.pins[2].commit},rf100-vl" in checks["rf100-vl"].fix
    assert checks["GLIP"].status == FAIL and "not a git checkout" in checks["GLIP"].detail
    assert (root / "GLIP" / "notes.txt").read_text() == "mine\n"  # never touched

    (root / "sam3" / "README").write_text("edited\n")
    assert by_path(submodules.sync(root, world.pins[:1]))["sam3"].status == WARN


def test_bad_input_and_a_missing_gitmodules_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="pick from sam3, GLIP, rf100-vl"):
        submodules.select("sam3,nope")
    assert [p.path for p in submodules.select("glip, SAM3")] == ["GLIP", "sam3"]
    git("init", "-q", str(tmp_path / "bare-project"))
    with pytest.raises(ConfigError, match="no .gitmodules"):
        submodules.sync(tmp_path / "bare-project")


# -------------------------------------------------------------------------------- the real inv


@pytest.fixture
def project(world, tmp_path):
    """A copy of this project (tasks.py, tasks/, invoke.yaml, .gitmodules) as a superproject whose
    gitlinks are the stand-ins' commits: inv run there manages its submodules, not ours."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("tasks.py", "invoke.yaml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "tasks", root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    world.superproject(root)
    return root


def test_cli_dry_run_prints_the_exact_commands_and_does_nothing(world, project):
    done = inv(["env.submodules", "--dry-run"], world.environ, cwd=project)
    assert done.returncode == 0, done.stderr
    for path in ("sam3", "GLIP", "rf100-vl"):
        assert f"  git submodule update --init -- {path}\n" in done.stdout
        assert not (project / path).exists()


def test_cli_checks_out_and_names_what_is_off_the_real_pins(world, project):
    # The stand-ins' commits are not GitHub's, so after checking out every one is off its real pin.
    done = inv(["env.submodules", "--json"], world.environ, cwd=project)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    sam3 = next(s for s in report["submodules"] if s["path"] == "sam3")
    assert sam3["head"] == world.commits["sam3"][0] and sam3["pin"] == submodules.PINS[0].commit
    fix = next(c["fix"] for c in report["checks"] if c["subject"] == "sam3")
    assert f"git -C sam3 checkout {submodules.PINS[0].commit}" in fix
    assert done.stderr.strip() == (
        "error: 3 submodule(s) not at their pins (sam3, GLIP, rf100-vl); see the fix column above"
    )


def test_cli_unreachable_remote_is_one_line_exit_1(world, project, tmp_path):
    world.rewrite_to(f"file://{tmp_path}/nowhere/")
    done = inv(["env.submodules", "--only", "sam3"], world.environ, cwd=project)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not fetch sam3 from https://github.com/"), lines
    assert "Traceback" not in done.stderr and not (project / "sam3").exists()


def test_cli_unknown_submodule_is_exit_2(world, project):
    done = inv(["env.submodules", "--only", "sam4"], world.environ, cwd=project)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --only 'sam4': unknown submodule sam4; pick from sam3, GLIP, rf100-vl"
