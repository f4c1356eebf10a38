"""Runs inside SAM3's training process (the training venv), never in the launcher.

When W&B logging is on, run.* puts this folder on the job's PYTHONPATH and points
`trainer.logging.tensorboard_writer._target_` at `sam3_wandb.make_tensorboard_logger`, with the task's
identity as extra keys of that node: wandb_name, wandb_group, wandb_dir, wandb_job_type (in a SLURM
job array they are interpolations that resolve per array task). SAM3 0.1.4 never reads
`trainer.logging.wandb_writer`; its Logger builds only the TensorBoard writer, so this wraps that: rank 0
starts a W&B run that mirrors TensorBoard (`sync_tensorboard=True`), then SAM3's own TensorBoard logger
is returned unchanged.

Project, entity and mode come from WANDB_PROJECT, WANDB_ENTITY, WANDB_MODE. The API key is never in the
job's environment (SAM3's Trainer logs it whole): online runs read it from the 0600 file that
SAM3_TASKS_WANDB_KEY_FILE names (its own launch's), after SAM3 has logged the environment (or wandb finds
~/.netrc).

W&B never stops training: when wandb.init fails (a bad key, the server down or slow), one line in the
task's log says so and the run goes on logging offline under the task's folder (`wandb sync` it later);
when even that fails, training goes on without W&B. Once the run is up, wandb's TensorBoard patch tells it
of every event file SAM3 opens, inside the training process: that is guarded too (one line, and the
writer is made as without W&B).
"""

import hashlib
import os
import re
import sys


def run_id(name: str, directory: str, job_type: str, instance: str = "") -> str:
    """The W&B run id of one task: the same at every start of it (a requeued or resumed job continues
    its W&B run, resume="allow"), and different for another experiment folder or job type, so two runs
    that share a name in one W&B project never merge; `instance` tells apart a run started again in the
    same folder (--restart). At most 64 characters, [A-Za-z0-9_-]."""
    key = f"{job_type}\0{directory}" + (f"\0{instance}" if instance else "")
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:55] or "run"
    return f"{clean}-{digest}"


def start_run(
    name: str | None = None,
    group: str | None = None,
    directory: str | None = None,
    job_type: str | None = None,
    tensorboard_dir: str | None = None,
    instance: str = "",
    mode: str | None = None,
):
    """The W&B run of this process (started once); with a name, one that resumes by its stable id; with
    tensorboard_dir, one that mirrors the TensorBoard events written under it; mode None is WANDB_MODE's.
    Raises what wandb raises (env.wandb's check wants to know)."""
    import wandb

    if wandb.run is not None:
        return wandb.run
    key_file = os.environ.get("SAM3_TASKS_WANDB_KEY_FILE")
    if key_file and not os.environ.get("WANDB_API_KEY"):
        # SAM3's Trainer logged its environment before building this logger: the key enters it only now
        with open(key_file) as handle:
            os.environ["WANDB_API_KEY"] = handle.read().strip()
    if tensorboard_dir and not wandb.patched["tensorboard"]:
        from wandb.integration import tensorboard

        tensorboard.patch(root_logdir=tensorboard_dir)  # named, so wandb does not wait 10 s to guess it
    identity = {"id": run_id(name, str(directory), str(job_type), instance), "resume": "allow"} if name else {}
    if directory:
        os.makedirs(directory, exist_ok=True)  # an array task may start before the launcher made its folder
    return wandb.init(
        name=name,
        group=group,
        dir=directory,
        job_type=job_type,
        sync_tensorboard=bool(tensorboard_dir),
        settings=wandb.Settings(save_code=False),
        mode=mode,
        **identity,
    )


def _say(text: str) -> None:
    """One line in the task's log (the job's output), with no key in it."""
    key = os.environ.get("WANDB_API_KEY")
    print(f"sam3_wandb: {text.replace(key, '***') if key else text}", file=sys.stderr, flush=True)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def start_or_go_on(name: str, group: str, directory: str, job_type: str, tensorboard_dir: str, instance: str = ""):
    """start_run for a training job, which W&B never stops: on failure one line, then an offline run (to
    `wandb sync` later), then none. Returns the run or None."""
    args = (name, group, directory, job_type, tensorboard_dir, instance)
    try:
        return _guard_tensorboard(start_run(*args))
    except Exception as error:  # whatever wandb raises: training goes on
        where = os.path.join(directory, "wandb")
        _say(
            f"W&B failed ({_first_line(error)}); training goes on and logs to W&B offline under {where}: "
            f"upload it later with `wandb sync {where}/offline-run-*`"
        )
    try:
        import wandb

        wandb.teardown()  # wandb's service still holds the failed run's id
        return _guard_tensorboard(start_run(*args, mode="offline"))
    except Exception as error:
        _say(f"W&B offline failed too ({_first_line(error)}); training goes on without W&B")
        return None


def _guard_tensorboard(run):
    """wandb's TensorBoard patch replaces the event file writer classes: each new writer tells the W&B run of
    its folder, inside SAM3's training process. Each patched class is wrapped so that an error there is one
    line and the writer is made as without W&B."""
    import wandb

    for module_name, attribute in wandb.patched["tensorboard"]:
        module = sys.modules.get(module_name)
        patched, original = getattr(module, attribute, None), getattr(module, f"orig_{attribute}", None)
        if patched is not None and original is not None and not getattr(patched, "sam3_guarded", False):
            setattr(module, attribute, _guarded(patched, original))
    return run


def _guarded(patched, original):
    def make(*args, **kwargs):
        try:
            return patched(*args, **kwargs)
        except Exception as error:
            _say(f"W&B could not follow a TensorBoard writer ({_first_line(error)}); training goes on")
            return original(*args, **kwargs)

    make.sam3_guarded = True
    return make


def make_tensorboard_logger(
    log_dir: str,
    wandb_name: str,
    wandb_group: str,
    wandb_dir: str,
    wandb_job_type: str,
    wandb_instance: str = "",
    **writer_kwargs,
):
    """SAM3's `make_tensorboard_logger`, with W&B mirroring its scalars on rank 0."""
    from sam3.train.utils.logger import make_tensorboard_logger as sam3_tensorboard_logger
    from sam3.train.utils.train_utils import get_machine_local_and_dist_rank

    if get_machine_local_and_dist_rank()[1] == 0:
        start_or_go_on(wandb_name, wandb_group, wandb_dir, wandb_job_type, log_dir, wandb_instance)
    return sam3_tensorboard_logger(log_dir, **writer_kwargs)
