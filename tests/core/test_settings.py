"""Configuration layering, provenance and one-line errors (tasks/lib/core/settings.py)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tasks.lib.core import settings as S
from tasks.lib.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "invoke.yaml").read_text())


def project(**sections):
    data = {k: dict(v) for k, v in DEFAULTS.items()}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return S.Layer("invoke.yaml", data, strict_sections=True)


def test_every_schema_key_has_a_default_and_every_default_is_in_the_schema():
    flat = {f"{section}.{key}" for section, values in DEFAULTS.items() if section in S.OUR_SECTIONS for key in values}
    assert set(DEFAULTS) - S.OUR_SECTIONS <= S.FOREIGN_SECTIONS  # invoke's own, e.g. tasks.executor_class
    assert flat == set(S.KEYS)


def test_defaults_resolve_with_their_source(tmp_path):
    settings = S.resolve([project()], environ={})
    assert settings["slurm.num_gpus"] == 8
    assert settings.sources["slurm.num_gpus"] == "invoke.yaml"
    assert settings.path("paths.experiment_root") == ROOT / "experiments"  # relative to the project, not cwd


def test_layers_apply_in_the_documented_order(tmp_path):
    user = S.Layer(
        "~/.invoke.yaml",
        {
            "slurm": {"partition": "user", "account": "user", "qos": "user"},
            "paths": {"experiment_root": str(tmp_path / "user")},
        },
    )
    runtime = S.Layer("-f run.yaml", {"slurm": {"qos": "runtime"}}, above_environment=True)
    environ = {"SAM3_EXPERIMENT_ROOT": str(tmp_path / "alias"), "INVOKE_SLURM_ACCOUNT": "env"}
    settings = S.resolve(
        [project(slurm={"partition": "project"}), user, runtime],
        environ,
        flags={"slurm.num_gpus": S.Flag("--num-gpus", "2"), "slurm.partition": S.Flag("--partition", None)},
    )
    assert settings["slurm.partition"] == "user"  # user file beats the project defaults
    assert settings.sources["slurm.partition"] == "~/.invoke.yaml"
    assert settings["slurm.account"] == "env"
    assert settings.sources["slurm.account"] == "env INVOKE_SLURM_ACCOUNT"
    assert settings["slurm.qos"] == "runtime"  # -f beats the environment
    assert settings.path("paths.experiment_root") == tmp_path / "alias"
    assert settings.sources["paths.experiment_root"] == "env SAM3_EXPERIMENT_ROOT"
    assert settings["slurm.num_gpus"] == 2 and settings.sources["slurm.num_gpus"] == "flag --num-gpus"


def test_invoke_env_name_beats_the_documented_alias(tmp_path):
    environ = {"ROBOFLOW_VL_100_ROOT": str(tmp_path / "a"), "INVOKE_PATHS_ROBOFLOW_VL_100_ROOT": str(tmp_path / "b")}
    settings = S.resolve([project()], environ)
    assert settings.path("paths.roboflow_vl_100_root") == tmp_path / "b"


@pytest.mark.parametrize(
    "layer,message",
    [
        (
            {"paths": {"experment_root": "/tmp"}},
            "unknown key 'paths.experment_root' (did you mean 'paths.experiment_root'?)",
        ),
        ({"hw": {"vram_box_gb": "lots"}}, "hw.vram_box_gb = 'lots' (from extra.yaml) is not a number"),
        ({"slurm": {"num_gpus": 0}}, "slurm.num_gpus = 0 (from extra.yaml) is below 1"),
        ({"slurm": {"num_gpus": 2.5}}, "is not a whole number"),
        ({"hw": {"run_kind": "masks"}}, "is not one of box, segmentation, eval"),
        ({"hw": "oops"}, "'hw' must be a mapping"),
        ({"paths": {"experiment_root": ""}}, "is empty"),
    ],
)
def test_bad_values_are_one_line_errors_naming_key_and_fix(layer, message):
    with pytest.raises(ConfigError) as error:
        S.resolve([project(), S.Layer("extra.yaml", layer, strict_sections=True)], environ={})
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert error.value.code == 2


def test_unknown_section_is_an_error_in_the_project_file_but_not_in_a_user_file():
    with pytest.raises(ConfigError, match="unknown key 'slrum'"):
        S.resolve([S.Layer("invoke.yaml", {**DEFAULTS, "slrum": {"partition": "x"}}, strict_sections=True)], {})
    other_project = S.Layer("~/.invoke.yaml", {"someotherproject": {"x": 1}, "run": {"echo": True}})
    S.resolve([project(), other_project], {})


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match=r"slurm.num_nodes = 'two' \(from env INVOKE_SLURM_NUM_NODES\)"):
        S.resolve([project()], {"INVOKE_SLURM_NUM_NODES": "two"})


def test_a_path_that_is_a_file_is_refused(tmp_path):
    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        S.resolve([project()], {"ODINW_DATA_ROOT": str(afile)})
    with pytest.raises(ConfigError, match="is not a folder"):
        S.resolve([project()], {"ODINW_DATA_ROOT": str(afile / "below")})


def test_a_path_that_is_not_writable_is_refused_for_an_unprivileged_user():
    """Root may write anywhere, so the check runs as 'nobody' with the system python, on a copy
    of tasks/lib in a folder that user can read."""
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() == 0 and not system_python:
        pytest.skip("needs a system python3 that the 'nobody' user can run")
    base = Path(tempfile.mkdtemp())
    try:
        os.chmod(base, 0o755)
        shutil.copytree(ROOT / "tasks" / "lib", base / "lib", ignore=shutil.ignore_patterns("__pycache__"))
        locked = base / "locked"
        locked.mkdir()
        os.chmod(locked, 0o555)
        code = (
            "import sys; sys.path.insert(0, sys.argv[1])\n"
            "from lib.core import settings as S\n"
            "try:\n    S.check_location('paths.experiment_root', S.resolve_path(sys.argv[2]), 'test')\n"
            "except S.ConfigError as e:\n    print(e)\n"
        )
        kwargs = {"user": 65534} if os.geteuid() == 0 else {}
        python = system_python if os.geteuid() == 0 else sys.executable
        done = subprocess.run(
            [python, "-c", code, str(base), str(locked / "exp")], capture_output=True, text=True, **kwargs
        )
        assert "is not writable; choose a writable location" in done.stdout, done.stderr
        assert not (locked / "exp").exists()
    finally:
        shutil.rmtree(base)


def test_jobs_env_allow_is_a_list_of_names_or_prefixes_from_yaml_or_one_env_string():
    assert S.resolve([project()], {})["jobs.env_allow"] == []
    given = S.resolve([project(jobs={"env_allow": ["MYLAB_ROOT", "MYLAB_*"]})], {})
    assert given["jobs.env_allow"] == ["MYLAB_ROOT", "MYLAB_*"] and given.sources["jobs.env_allow"] == "invoke.yaml"
    from_env = S.resolve([project()], {"INVOKE_JOBS_ENV_ALLOW": "MYLAB_ROOT, OTHER_*"})
    assert from_env["jobs.env_allow"] == ["MYLAB_ROOT", "OTHER_*"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("A,B;C", r"'B;C' is not a variable name"),
        (5, "is not a list of names; write e.g. \\[MYLAB_ROOT, MYLAB_\\*\\]"),
        (["MY-VAR"], "'MY-VAR' is not a variable name or a NAME_\\* prefix"),
        (["GITHUB_TOKEN"], "GITHUB_TOKEN names a secret, and no secret reaches a job"),
        (["DB_PASS*"], "DB_PASS\\* names a secret"),
    ],
)
def test_a_bad_jobs_env_allow_is_one_line_naming_the_key(value, message):
    with pytest.raises(ConfigError, match=r"jobs.env_allow = .*\(from invoke.yaml\)") as caught:
        S.resolve([project(jobs={"env_allow": value})], {})
    assert re.search(message, str(caught.value)) and "\n" not in str(caught.value)


def test_a_flag_error_names_the_flag_the_task_has_not_one_made_from_the_key():
    with pytest.raises(ConfigError, match=r"\(from flag --kind\) is not one of box"):
        S.resolve([project()], {}, flags={"hw.run_kind": S.Flag("--kind", "huge")})


def test_every_task_flag_named_in_a_setting_is_a_flag_of_that_task():
    """load_settings(c, **{key: (flag, value)}) in the task modules: each flag is a parameter of the function
    that names it (a task, or the helper its tasks pass that flag to)."""
    import ast
    import inspect

    from tasks import data, env, hw, remote

    for module in (data, env, hw, remote):
        tree = ast.parse(Path(module.__file__).read_text())
        for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
            body = getattr(getattr(module, function.name), "body", getattr(module, function.name))
            takes = {f"--{name.replace('_', '-')}" for name in inspect.signature(body).parameters}
            for call in ast.walk(function):
                if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "load_settings":
                    for keyword in (k for k in call.keywords if k.arg is None and isinstance(k.value, ast.Dict)):
                        for value in keyword.value.values:
                            assert value.elts[0].value in takes, (module.__name__, function.name, value.elts[0].value)
