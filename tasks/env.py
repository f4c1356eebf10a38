"""The training environment, step by step: submodules at their pins, a uv venv, PyTorch for this
driver, SAM3, its checkpoint, W&B and DVC. Each step does nothing when its work is done, so run.train
can name them as pre-tasks."""

import sys

from invoke import call

from . import hw
from .common import load_settings, task
from .lib.core import report as report_lib
from .lib.core.errors import ToolError

VENV_HELP = "Training venv (default: sam3.train_venv)."
DRY_HELP = "Print the exact commands and do nothing."
JSON_HELP = "Print JSON instead of a table (command output goes to stderr)."
TORCH_VERSION_HELP = "torch release, e.g. 2.9.1 (default: sam3.torch_version, else the newest); torchvision follows it."


def _show(outcome, dry_run: bool, as_json: bool) -> None:
    """One line (nothing to do), the commands (dry run), or the checks table after acting."""
    if as_json:
        print(report_lib.to_json(outcome.as_dict(dry_run)))
    elif outcome.done_nothing:
        print(f"env.{outcome.step}: {outcome.summary}")
    elif dry_run:
        print(f"env.{outcome.step} (dry run, nothing done) would {outcome.summary}:")
        for command in outcome.commands:
            print(f"  {command.line()}")
    elif outcome.checks:
        from rich.markup import escape  # the title is rich markup: sam3[train] must stay as written

        report_lib.print_checks(escape(f"env.{outcome.step}: {outcome.done()}"), outcome.checks)
    else:
        print(f"env.{outcome.step}: {outcome.done()}")
    failed = sum(check.status == report_lib.FAIL for check in outcome.checks)
    if failed:
        raise ToolError(f"env.{outcome.step}: {failed} check(s) failed; see the fix column above")


@task(
    help={
        "only": "Comma-separated submodules to handle (sam3, GLIP, rf100-vl; default: all).",
        "force": "Move submodules that are off their pin to it (discards local changes to their tracked files).",
        "dry_run": DRY_HELP,
        "json": JSON_HELP,
    }
)
def submodules(c, only=None, force=False, dry_run=False, json=False):
    """Check out sam3/, GLIP/ and rf100-vl/ at their pinned commits; say which differ and how to fix."""
    from .lib.core.paths import PROJECT_ROOT
    from .lib.env import submodules as submodules_lib

    load_settings(c)
    pins = submodules_lib.select(only)
    result = submodules_lib.sync(PROJECT_ROOT, pins, force=force, dry_run=dry_run)
    names = ", ".join(p.path for p in pins)
    if json:
        print(report_lib.to_json(result.as_dict()))
    elif dry_run:
        print(f"env.submodules (dry run, nothing done): {len(result.steps)} command(s) for {names}")
        for line in result.steps:
            print(f"  {line}")
        report_lib.print_checks("env.submodules: as they are now", result.checks)
        return
    elif not result.steps and all(check.status == report_lib.PASS for check in result.checks):
        print(f"env.submodules: {names} at their pins; nothing to do")
    else:
        for line in result.steps:
            print(f"ran: {line}")
        report_lib.print_checks("env.submodules", result.checks)
    if dry_run:
        return
    if result.fetch_error:
        raise ToolError(result.fetch_error)
    failed = [check.subject for check in result.checks if check.status == report_lib.FAIL]
    if failed:
        raise ToolError(f"{len(failed)} submodule(s) not at their pins ({', '.join(failed)}); see the fix column above")


@task(
    help={
        "venv": VENV_HELP,
        "python": "Python for a new venv: a version (3.12) or an interpreter path (default: the launcher's).",
        "torch_version": "torch release the Python version is judged against (default: 2.9 and newer).",
        "force": "Recreate the venv (everything installed in it is installed again by env.torch and env.sam3).",
        "dry_run": DRY_HELP,
        "json": JSON_HELP,
    }
)
def venv(c, venv=None, python=None, torch_version=None, force=False, dry_run=False, json=False):
    """Create the training venv with uv (pip seeded), on a Python that SAM3 and torch both support."""
    from .lib.env import trainenv

    path = load_settings(c, **{"sam3.train_venv": ("--venv", venv)}).path("sam3.train_venv")
    outcome = trainenv.plan_venv(path, python, torch_version, force)
    if not dry_run and outcome.commands:
        outcome = trainenv.make_venv(outcome, path, torch_version)
    _show(outcome, dry_run, json)


@task(
    help={
        "venv": VENV_HELP,
        "torch_version": TORCH_VERSION_HELP,
        "torch_index": "Wheel index: a URL, a build tag (cpu, cu126, cu128, cu130) or 'pypi' "
        "(default: sam3.torch_index, else the build hw.cuda names for this driver; CPU without a GPU).",
        "force": "Install again even when the torch there fits.",
        "dry_run": DRY_HELP,
        "json": JSON_HELP,
    }
)
def torch(c, venv=None, torch_version=None, torch_index=None, force=False, dry_run=False, json=False):
    """Install the PyTorch build that fits the driver's CUDA into the training venv, and verify it."""
    from .lib.env import trainenv
    from .lib.hw import gpu

    settings = load_settings(
        c,
        **{
            "sam3.train_venv": ("--venv", venv),
            "sam3.torch_version": ("--torch-version", torch_version),
            "sam3.torch_index": ("--torch-index", torch_index),
        },
    )
    path = settings.path("sam3.train_venv")
    inventory = gpu.read_inventory()
    target = trainenv.choose_torch(
        inventory, settings["sam3.torch_version"] or None, settings["sam3.torch_index"] or None
    )
    outcome = trainenv.plan_torch(path, target, inventory, force, dry_run)
    if not dry_run and outcome.commands:
        outcome = trainenv.install_torch(outcome, path, target, inventory)
    _show(outcome, dry_run, json)


@task(
    help={
        "venv": VENV_HELP,
        "checkout": "The sam3 checkout to install in editable mode (default: sam3.checkout).",
        "source": "auto (the checkout when it is there, else PyPI), checkout or pypi.",
        "sam3_version": "sam3 release from PyPI when there is no checkout (default: 0.1.4).",
        "force": "Install again even when it is already installed from there.",
        "dry_run": DRY_HELP,
        "json": JSON_HELP,
    }
)
def sam3(c, venv=None, checkout=None, source="auto", sam3_version=None, force=False, dry_run=False, json=False):
    """Install SAM3 with its [train] extra (and what training needs beyond it) into the training venv."""
    from .lib.env import trainenv

    settings = load_settings(c, **{"sam3.train_venv": ("--venv", venv), "sam3.checkout": ("--checkout", checkout)})
    path = settings.path("sam3.train_venv")
    version = sam3_version or trainenv.SAM3_PYPI_VERSION
    plan = trainenv.plan_sam3(path, settings.path("sam3.checkout"), source, version, force, dry_run)
    outcome = plan.outcome
    if not dry_run and outcome.commands:
        outcome = trainenv.install_sam3(plan, path)
    _show(outcome, dry_run, json)


@task(
    help={
        "revision": "Branch, tag or commit of facebook/sam3 (default: main); the commit it resolves to is recorded.",
        "verify": "Re-hash every cached file even when it is unchanged since it was last verified.",
        "dry_run": "Check token, access, revision and disk, and print what would be downloaded; write nothing.",
        "json": JSON_HELP,
    }
)
def weights(c, revision=None, verify=False, dry_run=False, json=False):
    """Download SAM3's checkpoint (facebook/sam3, gated) into the HF cache once, verified; print its path."""
    from .lib.env import weights as weights_lib

    settings = load_settings(c)
    hf_home = settings.path("paths.hf_home")
    out = sys.stderr if json else sys.stdout
    outcome = weights_lib.ensure(
        hf_home,
        revision or "main",
        settings["hw.disk_weights_gb"],
        settings.sources["hw.disk_weights_gb"],
        dry_run=dry_run,
        full_verify=verify,
        log=lambda line: print(line, file=out, flush=True),
    )
    if json:
        print(report_lib.to_json(outcome.as_dict()))
        return
    commit = (outcome.commit or "?")[:12]
    title = f"env.weights {outcome.repo}@{outcome.revision} = {commit} ({outcome.seconds:.1f} s)"
    report_lib.print_table(title, ("file", "size", "status", "hash", "detail"), weights_lib.rows(outcome))
    for note in outcome.notes:
        print(f"note: {note}")
    if outcome.removed_partials:
        print(f"removed {len(outcome.removed_partials)} partial download(s) left by an interrupted run")
    if dry_run:
        where = outcome.checkpoint or f"under {weights_lib.repo_folder(hf_home)}/snapshots/ (commit unknown offline)"
        print(f"dry run: nothing written; the checkpoint would be {where}")
    else:
        print(f"revision {outcome.revision} = commit {outcome.commit} (recorded in {weights_lib.record_path(hf_home)})")
        print(f"SAM3 checkpoint: {outcome.checkpoint}")


@task(
    help={
        "offline": "Check for offline logging (WANDB_MODE=offline): no network; a real offline run is started "
        "and removed. Runs log offline when tracking.wandb_mode is offline.",
        "dry_run": "Check the key's form and the settings only; contact nothing, start nothing.",
        "json": JSON_HELP,
    }
)
def wandb(c, offline=False, dry_run=False, json=False):
    """Check WANDB_API_KEY and log in to W&B (or prove offline mode); show where SAM3 runs will log."""
    from .lib.env import tracking

    settings = load_settings(c)
    result = tracking.check(settings, offline, dry_run)
    if json:
        print(report_lib.to_json(result.as_dict()))
    else:
        report_lib.print_checks(f"env.wandb ({result.mode}{', dry run' if dry_run else ''})", result.checks)
    failed = [check for check in result.checks if check.status == report_lib.FAIL]
    if failed:
        raise ToolError(f"{len(failed)} W&B check(s) failed; see the fix column above")


@task(
    iterable=["track"],
    help={
        "repo": "Folder to set DVC up in (default: the project folder).",
        "remote": "Remote URL: s3://bucket/path, gs://..., azure://container/path, ssh://[user@]host[:port]/path "
        "or a folder (default: tracking.dvc_remote_url). SSH: user and port go to .dvc/config.local, with "
        "SAM3_DVC_SSH_KEYFILE/_PASSPHRASE/_PASSWORD when set; the host key must be in known_hosts.",
        "name": "Remote name (default: tracking.dvc_remote_name).",
        "endpoint_url": "S3-compatible endpoint, e.g. http://minio:9000 (default: tracking.dvc_endpoint_url).",
        "track": "Dataset root or checkpoint folder to track with `dvc add` (repeatable; inside the repository).",
        "push": "After the round trip, push what --track added.",
        "dry_run": "Print the commands (secrets as $NAMES) and the plugin install; change nothing.",
        "json": JSON_HELP,
    },
)
def dvc(c, repo=None, remote=None, name=None, endpoint_url=None, track=None, push=False, dry_run=False, json=False):
    """Set up DVC: init, track paths, a verified remote with local-only credentials, proven by a round trip."""
    from .lib.core.paths import PROJECT_ROOT, resolve_path
    from .lib.env import dvc_setup

    settings = load_settings(
        c,
        **{
            "tracking.dvc_remote_url": ("--remote", remote),
            "tracking.dvc_remote_name": ("--name", name),
            "tracking.dvc_endpoint_url": ("--endpoint-url", endpoint_url),
        },
    )
    url = settings["tracking.dvc_remote_url"]
    parsed = (
        dvc_setup.parse_remote(url, settings["tracking.dvc_remote_name"], settings["tracking.dvc_endpoint_url"])
        if url
        else None
    )
    root = resolve_path(repo) if repo else PROJECT_ROOT
    runner = dvc_setup.Runner(log=lambda line: print(line, file=sys.stderr if json else sys.stdout, flush=True))
    result = dvc_setup.setup(root, parsed, track or (), push, dry_run, runner)
    if json:
        print(report_lib.to_json(result.as_dict()))
    else:
        report_lib.print_checks(
            f"env.dvc {result.repo}{' (dry run: nothing changed)' if dry_run else ''}", result.checks
        )
        if dry_run and result.commands:
            print("would run:\n" + "\n".join(f"  {command}" for command in result.commands))
    if len(result.failed) == 1:
        raise ToolError(result.failed[0].detail)
    if result.failed:
        raise ToolError(f"{len(result.failed)} DVC check(s) failed; see the fix column above")


def setup_summary(settings, project_root=None) -> list[tuple[str, str, str]]:
    """One row per step of env.setup: what is there now (submodules of project_root, default this project)."""
    from .lib.core.paths import PROJECT_ROOT
    from .lib.env import submodules as submodules_lib
    from .lib.env import trainenv
    from .lib.env import weights as weights_lib

    rows = []
    for state in submodules_lib.inspect(project_root or PROJECT_ROOT):
        at = f"at {state.head[:8]}" if state.head else "not checked out"
        status = "pass" if state.head == state.sub.commit else "fail"
        rows.append((f"submodule {state.sub.path}", status, f"{at} (pin {state.sub.commit[:8]})"))
    python = settings.path("sam3.train_venv") / "bin" / "python"
    versions = trainenv.training_versions(python) if python.exists() else {}
    for package in ("torch", "sam3"):
        found = versions.get(package)
        rows.append(
            (package, "pass" if found else "fail", f"{found} in {python.parent.parent}" if found else "missing")
        )
    local = weights_lib.local_weights(settings.path("paths.hf_home"))
    rows.append(("weights", "pass" if local else "fail", str(local) if local else "not downloaded (inv env.weights)"))
    for name, key in (("wandb", "tracking.wandb_project"), ("dvc", "tracking.dvc_remote_url")):
        rows.append((name, "pass" if settings[key] else "skip", settings[key] or f"not configured ({key})"))
    return rows


@task(
    pre=[call(hw.check, allow_no_gpu=True), submodules, venv, torch, sam3, weights],
    help={"dry_run": "Every step prints what it would do (they all run with --dry-run); nothing changes."},
)
def setup(c, dry_run=False):
    """Build everything, in order after hw.check; a summary table at the end."""
    settings = load_settings(c)
    if settings["tracking.wandb_project"]:
        wandb(c, dry_run=dry_run)
    if settings["tracking.dvc_remote_url"]:
        dvc(c, dry_run=dry_run)
    rows = setup_summary(settings)
    report_lib.print_table(
        f"env.setup{' (dry run: as things are now)' if dry_run else ''}", ("step", "status", "state"), rows
    )
    if not dry_run and any(status == "fail" for _, status, _ in rows):
        raise ToolError("env.setup: a step is not done; see the table")
