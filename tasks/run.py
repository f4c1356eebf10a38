"""Runs: render a SAM3 config, check it, launch SAM3's train.py locally or on SLURM, follow it."""

import os
import shlex
import signal
import sys
from pathlib import Path

from invoke import Exit

from . import env
from .common import load_settings, task
from .lib.core import report as report_lib
from .lib.core.errors import ToolError

# Makefile-style: the training env is built (or found done, in well under a second) before any run;
# with --dry-run these steps only say what they would do (tasks.lib.core.executor).
TRAINING_ENV = [env.venv, env.torch, env.sam3]

CONFIG_HELP = ("SAM3 config: its SAM3 name (configs/roboflow_v100/x.yaml), short name (x), or a path to your own "
               "YAML. Put it after the task name: inv run.train --config x. Default: the CPU demo.")  # fmt: skip
COMMON_HELP = {
    "mode": "local (this machine) or cluster (SLURM through submitit). Default: local.",
    "datasets": "RF100-VL/ODinW configs: all, a,b,c, or @file with one name a line. Default: all.",
    "set": "Override a config key, dotted: --set scratch.train_batch_size=2 (repeatable; +key=v adds a key).",
    "name": "Run name, the experiment folder under paths.experiment_root. Default: the config's short name.",
    "num_gpus": "GPUs per node. Default: 1 locally, slurm.num_gpus on a cluster.",
    "num_nodes": "Nodes (cluster only). Default: slurm.num_nodes.",
    "partition": "SLURM partition. Default: slurm.partition.",
    "account": "SLURM account. Default: slurm.account.",
    "qos": "SLURM QOS. Default: slurm.qos.",
    "max_parallel": "Cluster job arrays: at most this many datasets run at once (SLURM ArrayTaskThrottle).",
    "smoke": "Shrink the run to a few iterations on a few images with validation at once.",
    "no_preflight": "Skip the checks before launching.",
    "check_only": "Run the pre-flight checks and stop; launch nothing.",
    "dry_run": "Show the rendered config's path, its diff against the source, and the exact command; run nothing.",
}


def _launch(c, evaluate, config, set_, dry_run, no_preflight, check_only, **flags):
    from .lib.run import job_env, launch_record, local, planning, preflight, sam3_config, slurm

    settings = load_settings(c)
    python = settings.path("sam3.train_venv") / "bin" / "python"
    request = planning.Request(
        config=config, mode=flags["mode"], datasets=flags["datasets"], sets=list(set_ or []), name=flags["name"],
        num_gpus=_int("--num-gpus", flags["num_gpus"]), num_nodes=_int("--num-nodes", flags["num_nodes"]),
        partition=flags["partition"] or settings["slurm.partition"] or None,
        account=flags["account"] or settings["slurm.account"] or None, qos=flags["qos"] or settings["slurm.qos"] or None,
        smoke=flags["smoke"], evaluate=evaluate, max_parallel=_int("--max-parallel", flags["max_parallel"]),
    )  # fmt: skip
    try:
        package = planning.sam3_package_dir(python)
    except ToolError as error:
        if not dry_run:
            raise
        print(f"dry run stops here: {error}. The steps above would build it; the run's configs are rendered "
              "into the sam3 package it installs")  # fmt: skip
        return
    plan = planning.plan(request, settings, package, python)
    if plan.needs_weights and not (dry_run or check_only):
        env.weights(c)  # Makefile-style, for the configs that load SAM3's checkpoint
        plan = planning.plan(request, settings, package, python)  # now pointing at the verified copy
    for warning in plan.warnings:
        print(f"warning: {warning}")
    if plan.model_note:
        print(plan.model_note)
    if plan.withheld:
        print(f"job environment: {', '.join(plan.withheld)} kept out (secrets; jobs run offline, SAM3 logs its "
              "environment)")  # fmt: skip
    if dry_run:
        print(f"source config: {plan.source}")
        for launch_ in plan.launches:
            print(f"rendered config: {launch_.config_path}  (-c {launch_.config_name})")
        print(plan.diff() or "(no differences)")
        print("\n".join(plan.command_lines()))
        return
    if config is None:
        _ensure_demo_data(settings.path("paths.demo_data_root"))
    planning.write_configs(plan)
    if not no_preflight or check_only:
        checks = preflight.run_all(plan, python, request, *_data_kind_and_root(plan, settings, sam3_config))
        report_lib.print_checks("pre-flight", checks)
        for check in checks:
            if check.status in (report_lib.FAIL, report_lib.WARN):
                print(f"{check.status}: {check.check} {check.subject}: {check.detail}; fix: {check.fix}")
        if report_lib.worst(checks) == report_lib.FAIL or check_only:
            planning.remove_configs(plan)
        if report_lib.worst(checks) == report_lib.FAIL:
            raise Exit("error: pre-flight failed; nothing was launched (see the fix column)", code=1)
        if check_only:
            print("pre-flight passed; nothing launched (--check-only)")
            return
    job_env.write_secret_files(plan.env)
    record = launch_record.new_record(plan, request, python, sys.argv)
    launch_record.save_record(plan.run_dir, record)
    code = local.run_local(plan, record) if plan.mode == "local" else slurm.submit(plan, record)
    report_lib.print_table(f"{plan.name}: where things are", ("what", "where"), launch_record.where_things_go(plan))
    if plan.mode == "local":
        _print_status(launch_record.load_record(plan.run_dir.parent, plan.name))
    for line in planning.tensorboard_hint(plan.run_dir):
        print(line)
    if code:
        raise Exit(f"error: a task exited with {code}; see inv run.logs --name {plan.name}", code=1)


def _int(flag, value):
    from .lib.core.errors import ConfigError

    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not a whole number; pass e.g. {flag} 2") from None


def _data_kind_and_root(plan, settings, sam3_config):
    listing = sam3_config.dataset_list(sam3_config.load(plan.source))
    if not listing:
        return None, None
    if listing[0] == "all_odinw_supercategories":
        return "odinw", settings.path("paths.odinw_data_root")
    is_demo = plan.source == sam3_config.DEMO_CONFIG
    return "rf100vl", settings.path("paths.demo_data_root" if is_demo else "paths.roboflow_vl_100_root")


def _ensure_demo_data(root):
    from .lib.data import synth as synth_lib
    from .lib.run import planning

    missing = [name for name in planning.DEMO_DATASETS if not (root / name).is_dir()]
    if missing:
        synth_lib.write(synth_lib.plan("rf100vl", str(root), ",".join(missing), 12, None, 0))
        print(f"generated the demo datasets {', '.join(missing)} under {root} (data.synth)")


LAUNCH_HELP = {"set_": COMMON_HELP["set"], **{k: v for k, v in COMMON_HELP.items() if k != "set"}}


@task(pre=TRAINING_ENV, iterable=["set_"], auto_shortflags=False, help={"config": CONFIG_HELP, **LAUNCH_HELP})
def train(c, config=None, mode="local", datasets=None, set_=None, name=None, num_gpus=None, num_nodes=None,
          partition=None, account=None, qos=None, max_parallel=None, smoke=False, no_preflight=False,
          check_only=False, dry_run=False):  # fmt: skip
    """Fine-tune SAM3 with train.py, locally or on SLURM (no --config: the CPU demo).

    Runs env.venv, env.torch and env.sam3 first (each a no-op once done), and env.weights when the
    config loads SAM3's checkpoint and no verified copy is on disk yet.
    """
    _launch(c, False, config, set_, dry_run, no_preflight, check_only, mode=mode, datasets=datasets, name=name,
            num_gpus=num_gpus, num_nodes=num_nodes, partition=partition, account=account, qos=qos,
            max_parallel=max_parallel, smoke=smoke)  # fmt: skip


@task(name="eval", pre=TRAINING_ENV, iterable=["set_"], auto_shortflags=False,
      help={"config": CONFIG_HELP.replace(" Default: the CPU demo.", ""), **LAUNCH_HELP})  # fmt: skip
def eval_(c, config, mode="local", datasets=None, set_=None, name=None, num_gpus=None, num_nodes=None,
          partition=None, account=None, qos=None, max_parallel=None, smoke=False, no_preflight=False,
          check_only=False, dry_run=False):  # fmt: skip
    """Evaluate SAM3 with an evaluation config (trainer.mode: val).

    Runs env.venv, env.torch and env.sam3 first (each a no-op once done), and env.weights when the
    config loads SAM3's checkpoint and no verified copy is on disk yet.
    """
    _launch(c, True, config, set_, dry_run, no_preflight, check_only, mode=mode, datasets=datasets, name=name,
            num_gpus=num_gpus, num_nodes=num_nodes, partition=partition, account=account, qos=qos,
            max_parallel=max_parallel, smoke=smoke)  # fmt: skip


@task(name="list", help={"json": "Print JSON instead of a table."})
def list_(c, json=False):
    """List launched runs: name, mode, datasets, state, start."""
    from .lib.run import launch_record

    records = launch_record.list_records(load_settings(c).path("paths.experiment_root"))
    rows = [(r["name"], r["mode"], len(r["tasks"]), _state(r), r["started"], r["run_dir"]) for r in records]
    if json:
        print(report_lib.to_json({"runs": records}))
        return
    report_lib.print_table("runs", ("name", "mode", "tasks", "state", "started", "folder"), rows)


def _state(record):
    from .lib.run import status

    states = [status.task_state(record, entry) for entry in record["tasks"]]
    return ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))


@task(help={"name": "Run name (default: the last run).", "json": "Print JSON instead of a table."})
def status(c, name=None, json=False):
    """Show each task of a run: state, pid or job id, exit code, bbox AP."""
    from .lib.run import launch_record, status

    record = launch_record.load_record(load_settings(c).path("paths.experiment_root"), name)
    if json:
        states = [status.task_state(record, e) for e in record["tasks"]]
        results = [launch_record.val_results(Path(e["experiment_dir"]), e["dataset"]) for e in record["tasks"]]
        print(report_lib.to_json({"run": record, "states": states, "results": results}))
        return
    _print_status(record)


def _print_status(record):
    from .lib.run import launch_record, status

    rows = []
    for e in record["tasks"]:
        result = launch_record.val_results(Path(e["experiment_dir"]), e["dataset"])
        rows.append((e["dataset"] or record["name"], status.task_state(record, e), e["pid"] or "-", e["job_id"] or "-",
                     "-" if e["exit_code"] is None else e["exit_code"], _ap(result.get("AP")), _ap(result.get("AP_50")),
                     e["experiment_dir"]))  # fmt: skip
    columns = ("task", "state", "pid", "job", "exit", "bbox AP", "AP50", "folder")
    report_lib.print_table(f"{record['name']} ({record['mode']})", columns, rows)


def _ap(value):
    return "-" if value is None else "no GT" if value < 0 else f"{100 * value:.1f}"


@task(help={"name": "Run name (default: the last run).", "follow": "Keep printing new lines until the run ends.",
            "dataset": "Only this dataset's log."})  # fmt: skip
def logs(c, name=None, follow=False, dataset=None):
    """Print a run's logs (train.log per dataset, or submitit logs on a cluster)."""
    from .lib.run import launch_record, status

    record = launch_record.load_record(load_settings(c).path("paths.experiment_root"), name)
    status.print_logs(record, dataset, follow)


@task(help={"name": "Run name (default: the last run).", "dry_run": "Show what would be stopped."})
def cancel(c, name=None, dry_run=False):
    """Stop a run: scancel its SLURM jobs, or signal its local processes."""
    from .lib.run import launch_record, status

    record = launch_record.load_record(load_settings(c).path("paths.experiment_root"), name)
    for line in status.cancel(record, dry_run, os.kill, signal.SIGTERM):
        print(line)


@task(help={
    "name": "Run name (default: the last run).",
    "port": "Port on localhost (default: 6006, or a free one when 6006 is taken).",
    "dry_run": "Print the TensorBoard command; start nothing.",
})  # fmt: skip
def tensorboard(c, name=None, port=None, dry_run=False):
    """Start TensorBoard on a run's folder and print its URL; Ctrl-C stops it (with -H: forwarded to this machine)."""
    from .lib.run import launch_record
    from .lib.run import tensorboard as tensorboard_lib

    settings = load_settings(c)
    record = launch_record.load_record(settings.path("paths.experiment_root"), name)
    run_dir = Path(record["run_dir"])
    binary = tensorboard_lib.binary(settings.path("sam3.train_venv"))
    port = _int("--port", port) if port is not None else tensorboard_lib.free_port()
    if not 0 < port < 65536:
        raise ToolError(f"--port {port} is not a TCP port; pass one from 1 to 65535, e.g. --port 6006")
    argv = tensorboard_lib.command(binary, run_dir, port)
    if dry_run:
        print(f"would run: {shlex.join(argv)}")
        return
    code = tensorboard_lib.serve(argv, port, record["name"], run_dir, tensorboard_lib.tied_to_session())
    if code:
        raise Exit(f"error: TensorBoard exited {code}", code=1)
