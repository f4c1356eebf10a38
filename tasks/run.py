"""Runs: render a SAM3 config, check it, launch SAM3's train.py locally or on SLURM, follow it."""

import contextlib
import os
import shlex
import shutil
import signal
import sys
from functools import partial
from pathlib import Path

from invoke import Exit

from . import env
from .common import load_settings, task
from .lib.core import report as report_lib
from .lib.core.errors import ConfigError, ToolError

# Makefile-style: the training env is built (or found done, in well under a second) before any run;
# with --dry-run these steps only say what they would do (tasks.lib.core.executor).
TRAINING_ENV = [env.venv, env.torch, env.sam3]

CONFIG_HELP = (
    "SAM3 config: its SAM3 name (configs/roboflow_v100/x.yaml), short name (x), or a path to your own "
    "YAML. Put it after the task name: inv run.train --config x. Default: the CPU demo."
)
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
    "grid": "A grid axis, KEY=v1,v2,... over any config key (repeatable; crossed with each other and the datasets). "
    "Each cell runs in <run>/<cell>/<dataset>/.",
    "restart": "Start the run named again from nothing; its earlier files and record are kept as <name>.N.",
    "data": "Your own COCO dataset folder (train/, test/ or valid/, each with _annotations.coco.json), fine-tuned "
    "or evaluated with SAM3's RF100-VL config. Default config then: roboflow_v100_full_ft_100_images.",
    "task": "With --data: bbox (default) or segm (masks: the loss, mask head, postprocessor and mask AP).",
    "prompts": "With --data: a JSON or YAML file mapping category ids to text prompts (default: the names).",
    "rerun_failed": "Launch again only the tasks of a run (default: the last) that failed, were cancelled or have "
    "no final evaluation, with that run's own settings: --rerun-failed [RUN].",
}


def _launch(c, evaluate, config, set_, dry_run, no_preflight, check_only, rerun_failed, **flags):
    from .lib.run import local, planning, run_lock, slurm

    settings = load_settings(c)
    python = settings.path("sam3.train_venv") / "bin" / "python"
    request = _request(settings, config, set_, evaluate, rerun_failed, flags)
    try:
        package = planning.sam3_package_dir(python)
    except ToolError as error:
        if not dry_run:
            raise
        print(f"dry run stops here: {error}. The steps above would build it; the run's configs go in its folder")
        return
    limits = {}
    if request.mode == "cluster":
        guess = dict(slurm.DEFAULT_LIMITS)
        limits = _slurm_or_guess(dry_run, slurm.cluster_limits, guess, "assumes SLURM's default limits")
    whole = planning.plan(request, settings, package, python, only=set())  # every task; nothing rendered yet
    # one launch of a run at a time, from reading its record to the last job id saved (a dry run reads only)
    with contextlib.nullcontext() if dry_run else run_lock.hold(whole.run_dir):
        launched = _launch_held(
            c,
            request,
            settings,
            package,
            python,
            whole,
            limits,
            dry_run=dry_run,
            no_preflight=no_preflight,
            check_only=check_only,
            rerun_failed=rerun_failed,
        )
    if launched:
        plan, outcome = launched  # local: the started runner, to follow; cluster: the submission's exit code
        _after_launch(plan, local.follow(plan, outcome) if plan.mode == "local" else outcome)


def _request(settings, config, set_, evaluate, rerun_failed, flags):
    """What the flags ask for; with --rerun-failed, the earlier run's own request under the flags given."""
    from .lib.run import launch_record, planning

    request = planning.Request(
        config=config,
        mode=flags["mode"],
        datasets=flags["datasets"],
        sets=list(set_ or []),
        name=flags["name"],
        num_gpus=_int("--num-gpus", flags["num_gpus"]),
        num_nodes=_int("--num-nodes", flags["num_nodes"]),
        partition=flags["partition"] or settings["slurm.partition"] or None,
        account=flags["account"] or settings["slurm.account"] or None,
        qos=flags["qos"] or settings["slurm.qos"] or None,
        smoke=flags["smoke"],
        evaluate=evaluate,
        max_parallel=_int("--max-parallel", flags["max_parallel"]),
        grid=list(flags["grid"] or []),
        restart=flags["restart"],
        data=flags.get("data"),
        task=flags.get("task"),
        prompts=flags.get("prompts"),
    )
    if request.data is None and (request.task or request.prompts):
        raise ConfigError("--task and --prompts go with --data DIR (your own COCO dataset); add --data")
    if request.data and request.config is None:
        from .lib.run import own_data

        request.config = own_data.SAM3_CONFIG
    if not rerun_failed:
        return request
    overrides = {
        key: getattr(request, key)
        for key in ("partition", "account", "qos", "max_parallel")
        if flags.get(key) is not None
    }
    if flags["mode"] != "local":
        overrides["mode"] = flags["mode"]
    earlier = launch_record.load_record(
        settings.path("paths.experiment_root"), rerun_failed if isinstance(rerun_failed, str) else request.name
    )
    return launch_record.rerun_request(earlier, evaluate, overrides)


def _slurm_or_guess(dry_run, ask, guess, what):
    """ask() SLURM; when it does not answer, a launch stops (slurm.SchedulerSilent), a dry run goes on with
    guess and says so."""
    from .lib.run import slurm

    try:
        return ask()
    except slurm.SchedulerSilent as error:
        if not dry_run:
            raise
        print(f"note: {error}; the dry run {what}")
        return guess


def _launch_held(c, request, settings, package, python, whole, limits, dry_run, no_preflight, check_only, rerun_failed):
    """Decide what this launch does with each task of the run, check it, and launch it; with the run's lock
    held. When something was launched: (plan, the started local runner) or (plan, the submission's exit code);
    else None."""
    from .lib.run import job_env, launch_record, local, planning, slurm

    record, replaced, instance = _earlier_record(request, whole, dry_run)
    chosen = _chosen_tasks(record, whole, rerun_failed, strict=not dry_run)
    if not chosen:
        return None
    if request.mode == "cluster" and shutil.which("squeue"):  # no SLURM here: pre-flight says so
        ours = _slurm_or_guess(dry_run, slurm.job_states, {}, "does not count your queued jobs")
        slurm.refuse_too_many(len(chosen), limits, ours)
    plan_chosen = partial(
        planning.plan,
        request,
        settings,
        package,
        python,
        only=chosen,
        array_limit=limits.get("MaxArraySize"),
        wandb_instance=instance,
    )
    plan = plan_chosen()
    if plan.needs_weights and not (dry_run or check_only):
        env.weights(c)  # Makefile-style, for the configs that load SAM3's checkpoint
        plan = plan_chosen()  # now with the checkpoint's path
    _print_plan_notes(plan)
    if dry_run:
        _print_dry_run(plan, limits)
        return None
    if request.config is None:
        _ensure_demo_data(settings.path("paths.demo_data_root"))
    if not _configs_checked(plan, python, request, settings, bool(replaced), no_preflight, check_only):
        return None
    job_env.write_secret_files(plan.env)
    record = launch_record.record_launch(record, plan, request, python, sys.argv)
    launch_record.save_record(plan.run_dir, record)
    if plan.mode == "local":  # started here, followed once the lock is let go: the runner takes it to record
        return plan, local.start_runner(plan, record)
    return plan, slurm.submit(plan, record, request.max_parallel)


def _earlier_record(request, whole, dry_run):
    """(the run's record to continue or None, the record --restart sets aside or None, the W&B instance):
    a record of another identity refused, jobs a cut-off launch queued adopted."""
    from .lib.run import identity, launch_record, slurm, status

    record = launch_record.existing(whole.run_dir)
    replaced, instance = None, (record or {}).get("wandb_instance", "")
    if record and request.restart:
        status.refuse_restart_while_live(record)
        replaced, record = record, None  # set aside, put back if nothing launches
        instance = launch_record.aside_name(whole.run_dir).name.rsplit(".", 1)[-1]
        if dry_run:
            name = replaced["name"]
            print(f"{name}: --restart would keep the earlier run as {name}.{instance} and start afresh")
    if record:
        identity.refuse_other_identity(record, whole.identity)
        if not dry_run:
            for line in slurm.adopt_lost_jobs(record):
                print(line)
    return record, replaced, instance


def _chosen_tasks(record, whole, rerun_failed, strict):
    """The keys of the tasks this launch starts, each other task's fate printed. strict: SLURM must answer
    (a task SLURM did not list is not a finished task)."""
    from .lib.run import identity, status

    tasks = (record or {}).get("tasks", [])
    states = dict(
        zip(
            [(e.get("cell"), e["dataset"]) for e in tasks],
            status.run_states(record, strict=strict) if record else [],
            strict=True,
        )
    )
    decisions = identity.decide(record, whole, lambda e: states[(e.get("cell"), e["dataset"])], bool(rerun_failed))
    _print_decisions(decisions)
    chosen = {d.task.key for d in decisions if d.launches}
    if not chosen:
        why = "nothing failed or is unfinished" if rerun_failed else "every task is finished or queued"
        print(f"{whole.name}: nothing to launch ({why})")
        if record:
            _print_status(record)
    return chosen


def _print_plan_notes(plan):
    from .lib.run import job_env

    for note in plan.notes:
        print(note)
    for warning in plan.warnings:
        print(f"warning: {warning}")
    if plan.model_note:
        print(plan.model_note)
    if plan.withheld:
        print(job_env.describe_withheld(plan.withheld))


def _configs_checked(plan, python, request, settings, restart, no_preflight, check_only):
    """The run's configs written into its folder, and pre-flight passed: True to launch. A restart first sets
    the earlier run aside (its configs stay its own) and puts it back when nothing is launched."""
    from .lib.run import launch_record, planning, preflight

    moved = launch_record.set_aside(plan.run_dir) if restart else None
    passed = False
    try:
        if preflight.check_experiment_dir(plan).status == report_lib.PASS:  # else pre-flight says so
            planning.write_configs(plan)
        passed = _preflight_passed(plan, python, request, settings, no_preflight, check_only)
    finally:
        if moved and not passed:
            planning.remove_configs(plan)
            launch_record.set_aside(moved, plan.run_dir)
    if moved and passed:
        print(f"{plan.name}: the earlier run and its record are kept as {moved.name} ({moved}); starting afresh")
    return passed


def _preflight_passed(plan, python, request, settings, no_preflight, check_only):
    """Pre-flight, printed; False when nothing is to be launched (a check failed: exit 1; --check-only)."""
    from .lib.run import planning, preflight, sam3_config

    if no_preflight and not check_only:
        return True
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
    return not check_only


def _after_launch(plan, code):
    """Where things are, the run's state (local), how to watch it, and a failure's cause."""
    from .lib.run import launch_record, planning

    report_lib.print_table(f"{plan.name}: where things are", ("what", "where"), launch_record.where_things_go(plan))
    if plan.mode == "local":
        _print_status(launch_record.load_record(plan.run_dir.parent, plan.name))
    for line in planning.tensorboard_hint(plan.run_dir):
        print(line)
    if code:
        raise Exit(
            f"error: a task exited with {code} (its cause is above); all of its log: inv run.logs --name {plan.name}",
            code=1,
        )


def _print_decisions(decisions):
    """One line per task this launch does not simply start; a summary when there are many."""
    special = [d for d in decisions if d.action != "launch"]
    if len(special) > 20:
        counts = {}
        for decision in special:
            counts[decision.action] = counts.get(decision.action, 0) + 1
        print("continuing the run: " + ", ".join(f"{n} to {action}" for action, n in counts.items()))
        return
    for decision in special:
        print(f"{decision.task.label}: {decision.why}")


def _print_dry_run(plan, limits):
    launched = plan.launched()
    cells = plan.cells
    if cells:
        datasets = len({task.dataset for task in launched})
        print(f"grid: {len(cells)} cell(s) x {datasets} dataset(s) = {len(launched)} task(s)")
        for cell in cells:
            print(f"  cell {cell.name}")
    else:
        print(f"tasks: {len(launched)}")
    if plan.mode == "cluster":
        print(f"SLURM arrays: {len(plan.launches)} (MaxArraySize {limits.get('MaxArraySize')})")
    print(f"source config: {plan.source}")
    for launch_ in plan.launches[:5]:
        print(f"rendered config: {launch_.config_path}  (-c {launch_.config_name})")
    if len(plan.launches) > 5:
        print(f"... and {len(plan.launches) - 5} more rendered configs")
    print(plan.diff() or "(no differences)")
    lines = plan.command_lines()
    print("\n".join(lines[:5]))
    if len(lines) > 5:
        print(f"... and {len(lines) - 5} more")


def _int(flag, value):
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not a whole number; pass e.g. {flag} 2") from None


def _data_kind_and_root(plan, settings, sam3_config):
    if plan.own_data is not None:
        return "coco", plan.own_data.root
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


@task(
    pre=TRAINING_ENV,
    iterable=["set_", "grid"],
    optional=["rerun_failed"],
    auto_shortflags=False,
    help={"config": CONFIG_HELP, **LAUNCH_HELP},
)
def train(
    c,
    config=None,
    data=None,
    task=None,
    prompts=None,
    mode="local",
    datasets=None,
    set_=None,
    grid=None,
    name=None,
    num_gpus=None,
    num_nodes=None,
    partition=None,
    account=None,
    qos=None,
    max_parallel=None,
    smoke=False,
    restart=False,
    rerun_failed=None,
    no_preflight=False,
    check_only=False,
    dry_run=False,
):
    """Fine-tune SAM3 with train.py, locally or on SLURM (no --config: the CPU demo).

    Runs env.venv, env.torch and env.sam3 first (each a no-op once done), and env.weights when the
    config loads SAM3's checkpoint and no verified copy is on disk yet.
    """
    _launch(
        c,
        False,
        config,
        set_,
        dry_run,
        no_preflight,
        check_only,
        rerun_failed,
        mode=mode,
        datasets=datasets,
        grid=grid,
        name=name,
        num_gpus=num_gpus,
        num_nodes=num_nodes,
        partition=partition,
        account=account,
        qos=qos,
        max_parallel=max_parallel,
        smoke=smoke,
        restart=restart,
        data=data,
        task=task,
        prompts=prompts,
    )


@task(
    name="eval",
    pre=TRAINING_ENV,
    iterable=["set_", "grid"],
    optional=["rerun_failed"],
    auto_shortflags=False,
    help={"config": CONFIG_HELP.replace(" Default: the CPU demo.", ""), **LAUNCH_HELP},
)
def eval_(
    c,
    config=None,
    data=None,
    task=None,
    prompts=None,
    mode="local",
    datasets=None,
    set_=None,
    grid=None,
    name=None,
    num_gpus=None,
    num_nodes=None,
    partition=None,
    account=None,
    qos=None,
    max_parallel=None,
    smoke=False,
    restart=False,
    rerun_failed=None,
    no_preflight=False,
    check_only=False,
    dry_run=False,
):
    """Evaluate SAM3 with an evaluation config (trainer.mode: val).

    Runs env.venv, env.torch and env.sam3 first (each a no-op once done), and env.weights when the
    config loads SAM3's checkpoint and no verified copy is on disk yet.
    """
    if config is None and not rerun_failed and not data:
        raise ConfigError(
            "run.eval needs --config (an evaluation config, e.g. roboflow_v100_eval), --data DIR (your own COCO "
            "dataset: the model you start from, evaluated), or --rerun-failed RUN"
        )
    _launch(
        c,
        True,
        config,
        set_,
        dry_run,
        no_preflight,
        check_only,
        rerun_failed,
        mode=mode,
        datasets=datasets,
        grid=grid,
        name=name,
        num_gpus=num_gpus,
        num_nodes=num_nodes,
        partition=partition,
        account=account,
        qos=qos,
        max_parallel=max_parallel,
        smoke=smoke,
        restart=restart,
        data=data,
        task=task,
        prompts=prompts,
    )


@task(name="list", help={"json": "Print JSON instead of a table."})
def list_(c, json=False):
    """List launched runs: name, mode, grid cells, tasks, launches, state, start."""
    from .lib.run import launch_record

    records = launch_record.list_records(load_settings(c).path("paths.experiment_root"))
    rows = [
        (
            r["name"],
            r["mode"],
            len({t.get("cell") for t in r["tasks"] if t.get("cell")}) or "-",
            len(r["tasks"]),
            len(r.get("launches", [])) or 1,
            _state(r),
            r["started"],
            r["run_dir"],
        )
        for r in records
    ]
    if json:
        print(report_lib.to_json({"runs": records}))
        return
    report_lib.print_table("runs", ("name", "mode", "cells", "tasks", "launches", "state", "started", "folder"), rows)


def _state(record):
    from .lib.run import status

    states = status.run_states(record)
    return ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))


CELL_HELP = "Only this grid cell's tasks (its folder name, e.g. lr=0.0001)."


@task(help={"name": "Run name (default: the last run).", "json": "Print JSON instead of a table.", "cell": CELL_HELP})
def status(c, name=None, json=False, cell=None):
    """Show each task of a run (each cell's, for a grid): state, how far it is (epoch, % done), pid or job id,
    exit code, bbox AP."""
    from .lib.run import launch_record, status
    from .lib.run import results as results_lib

    record = launch_record.load_record(load_settings(c).path("paths.experiment_root"), name)
    if cell:
        record = dict(record, tasks=status.select(record, cell=cell))
    if json:
        states = status.run_states(record)
        results = [results_lib.val_results(Path(e["experiment_dir"]), e["dataset"]) for e in record["tasks"]]
        progress = [
            results_lib.progress(Path(e["experiment_dir"]), e["dataset"], state.startswith(results_lib.DONE))
            for e, state in zip(record["tasks"], states, strict=True)
        ]
        print(report_lib.to_json({"run": record, "states": states, "results": results, "progress": progress}))
        return
    _print_status(record)


def _print_status(record):
    from .lib.run import results, status

    rows, states = [], status.run_states(record)
    for e, state in zip(record["tasks"], states, strict=True):
        folder = Path(e["experiment_dir"])
        result = results.val_results(folder, e["dataset"])
        rows.append(
            (
                status.label(record, e),
                state,
                results.progress(folder, e["dataset"], state.startswith(results.DONE)),
                e["pid"] or "-",
                e["job_id"] or "-",
                "-" if e["exit_code"] is None else e["exit_code"],
                _ap(result.get("AP")),
                _ap(result.get("AP_50")),
                e["experiment_dir"],
            )
        )
    columns = ("task", "state", "progress", "pid", "job", "exit", "bbox AP", "AP50", "folder")
    report_lib.print_table(f"{record['name']} ({record['mode']})", columns, rows)
    if status.UNKNOWN in states:
        print(f"note: {states.count(status.UNKNOWN)} task(s) {status.UNKNOWN}: their state is not known, not finished")
    for line in status.failure_causes(record, states):
        print(line)


def _ap(value):
    return "-" if value is None else "no GT" if value < 0 else f"{100 * value:.1f}"


RESULTS_HELP = {
    "name": "A run name (default: the last run), a run folder, or an experiment folder SAM3's train.py wrote "
    "(<experiment_log_dir>/logs/<dataset>/val_stats.json).",
    "json": "Print JSON instead of tables (tasks' metrics on SAM3's 0-1 scale; the groups' AP x100).",
    "csv": "Print one CSV row per task instead of tables (x100).",
    "compare": "Another run (name or folder): per-dataset and per-domain AP deltas, largest first.",
    "setting": "Compare with SAM3's figures for this setting instead of the one read from the config: zero-shot, "
    "1-shot, 3-shot, 5-shot, 10-shot, full-ft, or none.",
    "no_plot": "Do not draw the PNG (<run>/results.png; the table is saved as <run>/results.csv either way).",
    "no_wandb": "Do not log the table and plot to W&B even when tracking.wandb_project is set.",
}


@task(auto_shortflags=False, help=RESULTS_HELP)
def results(c, name=None, json=False, csv=False, compare=None, setting=None, no_plot=False, no_wandb=False):
    """A run as a table and a plot: per-dataset box AP and SAM3's other COCO figures, RF100-VL's domains,
    grid cells side by side (seeds as mean ± std), beside SAM3's published figure for the same setting."""
    from .lib.core.errors import ConfigError
    from .lib.env import tracking
    from .lib.run import published, status
    from .lib.run import results as results_lib

    if json and csv:
        raise ConfigError("--json and --csv both given; pass one of them")
    settings = load_settings(c)
    root = settings.path("paths.experiment_root")
    forced = published.parse_setting(setting) if setting else None
    state_of = status.state_of_each_run()
    source = results_lib.load(name, root, state_of)
    summary = results_lib.summarize(source, forced)
    plot, notes = _results_saved(summary, no_plot)
    beside = results_lib.baseline_beside(source, summary, root, state_of)
    notes += results_lib.baseline_lines(beside, source.record)
    comparison = None
    if compare:
        comparison = results_lib.compare(summary, results_lib.summarize(results_lib.load(compare, root, state_of)))
    wandb_env = {} if no_wandb else tracking.wandb_job_env(settings)
    if wandb_env:
        notes.append(results_lib.log_to_wandb(summary, plot, wandb_env, os.environ, sys.executable))
    if json:
        print(report_lib.to_json({**summary, "compare": comparison, "baseline": beside, "notes": notes}))
    elif csv:
        print(results_lib.to_csv(summary), end="")
    else:
        _print_results(summary, comparison, beside)
    for note in notes if not json else []:
        print(note, file=sys.stderr if csv else sys.stdout)
    if plot and csv:
        print(f"plot: {plot}", file=sys.stderr)


def _results_saved(summary, no_plot):
    """<run>/results.csv and (unless no_plot) results.png written: (the plot's path or None, notes)."""
    from .lib.run import results as results_lib

    plot = None
    try:
        summary["table"] = str(results_lib.save_csv(summary))
        if not no_plot:
            from .lib.run import results_plot

            plot = results_plot.draw(summary, Path(summary["folder"]) / "results.png")
    except OSError as error:
        summary["plot"] = None
        return None, [f"warning: nothing saved: cannot write in {summary['folder']} ({error.strerror})"]
    summary["plot"] = str(plot) if plot else None
    return plot, []


def _print_results(summary, comparison, beside):
    from .lib.run import results as results_lib

    columns, rows = results_lib.shown_task_rows(summary)
    report_lib.print_table(
        f"{summary['run']}: box AP x100 per task (the last complete line of val_stats.json)", columns, rows
    )
    for title, table in (
        ("AP by cell", results_lib.cells_table(summary)),
        ("RF100-VL by domain", results_lib.domain_table(summary)),
    ):
        if table:
            report_lib.print_table(f"{summary['run']}: {title}", *table)
    for line in results_lib.summary_lines(summary):
        print(line)
    if beside:
        report_lib.print_table(*results_lib.baseline_table(summary["run"], beside))
    for title, columns, rows, verdict in results_lib.compare_tables(comparison) if comparison else []:
        report_lib.print_table(title, columns, rows)
        if verdict:
            print(verdict)
    for line in results_lib.file_lines(summary):
        print(line)


@task(
    help={
        "name": "Run name (default: the last run).",
        "follow": "Keep printing new lines until the run ends.",
        "dataset": "Only this dataset's log (its name, or cell/dataset in a grid).",
        "cell": CELL_HELP,
    }
)
def logs(c, name=None, follow=False, dataset=None, cell=None):
    """Print a run's logs (train.log per task, or submitit logs on a cluster)."""
    from .lib.run import launch_record, status

    record = launch_record.load_record(load_settings(c).path("paths.experiment_root"), name)
    status.print_logs(record, dataset, follow, cell=cell)


@task(help={"name": "Run name (default: the last run).", "dry_run": "Show what would be stopped.", "cell": CELL_HELP})
def cancel(c, name=None, dry_run=False, cell=None):
    """Stop a run (or one grid cell): scancel its SLURM jobs, or signal its local processes."""
    from .lib.run import launch_record, status

    record = launch_record.load_record(load_settings(c).path("paths.experiment_root"), name)
    for line in status.cancel(record, dry_run, os.kill, signal.SIGTERM, cell=cell):
        print(line)


@task(
    help={
        "name": "Run name (default: the last run).",
        "port": "Port on localhost (default: 6006, or a free one when 6006 is taken).",
        "dry_run": "Print the TensorBoard command; start nothing.",
    }
)
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


EXPORT_HELP = {
    "name": "Run name (default: the last run).",
    "dataset": "The task to export: its dataset (or cell/dataset in a grid); needed when the run has several.",
    "cell": CELL_HELP,
    "output": "The file to write. Default: <task folder>/export/<run>[-<cell>]-<dataset>.pt, beside the task's "
    "checkpoints/ and logs/.",
    "force": "Replace --output when it exists.",
    "json": "Print JSON instead of lines.",
}


@task(help=EXPORT_HELP)
def export(c, name=None, dataset=None, cell=None, output=None, force=False, json=False):
    """Export a task's trainer checkpoint as one file SAM3's own loader reads (build_sam3_image_model's
    checkpoint_path): {"model": {"detector." + key: tensor}}, no optimizer. Written under a temporary name and
    renamed into place only once proven: the model as trained loads it through SAM3's loader with no missing or
    unexpected keys, every tensor equals the trainer's, and one image and prompt give identical outputs."""
    from .lib.run import export as export_lib
    from .lib.run import launch_record

    settings = load_settings(c)
    record = launch_record.load_record(settings.path("paths.experiment_root"), name)
    source = export_lib.choose(record, dataset, cell)
    target = export_lib.check_output(Path(output) if output else export_lib.default_output(source), source, force)
    python = settings.path("sam3.train_venv") / "bin" / "python"
    result = export_lib.export(python, source, target, force)
    print(report_lib.to_json(result) if json else "\n".join(export_lib.summary_lines(result)))


PREDICT_HELP = {
    "name": (
        "A run (default: the last run): its tasks' prediction dumps are drawn, no model is run. With "
        "--checkpoint: the run whose model config builds the model (e.g. the CPU demo's reduced one)."
    ),
    "checkpoint": "A checkpoint in SAM3's loader layout (inv run.export's file) to run on --images or --data.",
    "images": (
        "With --checkpoint: a folder of images to run it on (needs --prompts). With a run: where the "
        "images are when the folder its config names is elsewhere."
    ),
    "data": (
        "With --checkpoint: a COCO dataset folder (Roboflow's layout); its evaluation split, ground truth "
        "drawn beside the predictions."
    ),
    "prompts": (
        'With --images: the phrases to detect, comma-separated ("bolt,nut"). With --data: a JSON or YAML '
        "file of category id to phrase, as run.train reads it (default: the category names)."
    ),
    "dataset": "Only this task of the run (its dataset, or cell/dataset).",
    "cell": CELL_HELP,
    "threshold": (
        "Score from 0 to 1 at which predictions are drawn and counted (the page's slider starts there). Default: 0.5."
    ),
    "max_images": "At most this many images on the page and sheets, worst first. Default: 200.",
    "out": "With --checkpoint: the folder to write (default: predictions-<images folder> beside the checkpoint).",
    "no_open": "Do not open the page in a browser.",
    "no_wandb": "Do not log the contact sheets to W&B even when tracking.wandb_project is set.",
    "json": "Print JSON (each page's path, sheets, order and per-category counts) instead of tables.",
}


@task(auto_shortflags=False, help=PREDICT_HELP)
def predict(
    c,
    name=None,
    checkpoint=None,
    images=None,
    data=None,
    prompts=None,
    dataset=None,
    cell=None,
    threshold=None,
    max_images=None,
    out=None,
    no_open=False,
    no_wandb=False,
    json=False,
):
    """Draw predictions over images beside their ground truth: one self-contained HTML page (worst images
    first, a score slider, per-category counts) and PNG contact sheets per task, from a run's prediction
    dumps or from a checkpoint run on images (torchvision draws the sheets in the training env, which
    inv env.setup builds)."""
    from .lib.env import tracking
    from .lib.run import predictions

    settings = load_settings(c)
    python = settings.path("sam3.train_venv") / "bin" / "python"
    request = predictions.Request(
        name=name,
        checkpoint=checkpoint,
        images=images,
        data=data,
        prompts=prompts,
        dataset=dataset,
        cell=cell,
        threshold=predictions.parse_threshold(threshold),
        max_images=predictions.parse_max_images(max_images),
        out=out,
    )
    jobs, notes = predictions.plan(request, settings, python)
    summaries = [predictions.make(job, request.threshold, request.max_images, python) for job in jobs]
    wandb_env = {} if no_wandb or not summaries[0]["run"] else tracking.wandb_job_env(settings)
    if wandb_env:
        notes.append(predictions.log_to_wandb(summaries, jobs[0].run_dir, wandb_env, os.environ, sys.executable))
    if json:
        print(report_lib.to_json({"pages": summaries, "notes": notes}))
    for summary in [] if json else summaries:
        report_lib.print_table(*predictions.table(summary))
        print(f"sheets: {len(summary['sheets'])} in {Path(summary['page']).parent} (worst images first)")
        print(f"page: {summary['page']}")
    for line in notes + [n for s in summaries for n in s["notes"]] if not json else []:
        print(line)
    if not no_open:
        print(predictions.open_page(Path(summaries[0]["page"]), os.environ), file=sys.stderr if json else sys.stdout)
