"""env.weights, env.wandb, env.dvc: SAM3's checkpoint on disk, experiment tracking and data versioning ready.

Thin task bodies; the work is in tasks/lib/weights.py, tracking.py and dvc_setup.py. Mounted into the
`env` namespace by tasks.py.
"""

import sys

from .common import load_settings, task
from .lib import report as report_lib
from .lib.errors import ToolError

JSON_HELP = "Print JSON instead of tables (progress goes to stderr)."
DRY_RUN_HELP = "Print what would be done and change nothing."


@task(help={
    "revision": "Branch, tag or commit of facebook/sam3 (default: main); the commit it resolves to is recorded.",
    "verify": "Re-hash every cached file even when it is unchanged since it was last verified.",
    "dry_run": "Check token, access, revision and disk, and print what would be downloaded; write nothing.",
    "json": JSON_HELP,
})  # fmt: skip
def weights(c, revision=None, verify=False, dry_run=False, json=False):
    """Download SAM3's checkpoint (facebook/sam3, gated) into the HF cache once, verified; print its path."""
    from .lib import weights as weights_lib

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
        print(f"dry run: nothing written; the checkpoint would be {outcome.checkpoint}")
    else:
        print(f"revision {outcome.revision} = commit {outcome.commit} (recorded in {weights_lib.record_path(hf_home)})")
        print(f"SAM3 checkpoint: {outcome.checkpoint}")


@task(help={
    "offline": "Check for offline logging (WANDB_MODE=offline): no network; a real offline run is started "
               "and removed. Runs log offline when tracking.wandb_mode is offline.",
    "dry_run": "Check the key's form and the settings only; contact nothing, start nothing.",
    "json": JSON_HELP,
})  # fmt: skip
def wandb(c, offline=False, dry_run=False, json=False):
    """Check WANDB_API_KEY and log in to W&B (or prove offline mode); show where SAM3 runs will log."""
    from .lib import tracking

    settings = load_settings(c)
    result = tracking.check(settings, offline, dry_run)
    if json:
        print(report_lib.to_json(result.as_dict()))
    else:
        report_lib.print_checks(f"env.wandb ({result.mode}{', dry run' if dry_run else ''})", result.checks)
    failed = [check for check in result.checks if check.status == report_lib.FAIL]
    if failed:
        raise ToolError(f"{len(failed)} W&B check(s) failed; see the fix column above")


@task(iterable=["track"], help={
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
})  # fmt: skip
def dvc(c, repo=None, remote=None, name=None, endpoint_url=None, track=None, push=False, dry_run=False, json=False):
    """Set up DVC: init, track paths, a verified remote with local-only credentials, proven by a round trip."""
    from .lib import dvc_setup
    from .lib.paths import PROJECT_ROOT, resolve_path

    settings = load_settings(c, **{"tracking.dvc_remote_url": remote, "tracking.dvc_remote_name": name,
                                   "tracking.dvc_endpoint_url": endpoint_url})  # fmt: skip
    url = settings["tracking.dvc_remote_url"]
    parsed = dvc_setup.parse_remote(url, settings["tracking.dvc_remote_name"],
                                    settings["tracking.dvc_endpoint_url"]) if url else None  # fmt: skip
    root = resolve_path(repo) if repo else PROJECT_ROOT
    runner = dvc_setup.Runner(log=lambda line: print(line, file=sys.stderr if json else sys.stdout, flush=True))
    result = dvc_setup.setup(root, parsed, track or (), push, dry_run, runner)
    if json:
        print(report_lib.to_json(result.as_dict()))
    else:
        report_lib.print_checks(f"env.dvc {result.repo}{' (dry run: nothing changed)' if dry_run else ''}",
                                result.checks)  # fmt: skip
        if dry_run and result.commands:
            print("would run:\n" + "\n".join(f"  {command}" for command in result.commands))
    if len(result.failed) == 1:
        raise ToolError(result.failed[0].detail)
    if result.failed:
        raise ToolError(f"{len(result.failed)} DVC check(s) failed; see the fix column above")
