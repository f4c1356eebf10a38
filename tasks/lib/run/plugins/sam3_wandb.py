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
SAM3_TASKS_WANDB_KEY_FILE names, after SAM3 has logged the environment (or wandb finds ~/.netrc).
"""

import hashlib
import os
import re


def run_id(name: str, directory: str, job_type: str, instance: str = "") -> str:
    """The W&B run id of one task: the same at every start of it (a requeued or resumed job continues
    its W&B run, resume="allow"), and different for another experiment folder or job type, so two runs
    that share a name in one W&B project never merge; `instance` tells apart a run started again in the
    same folder (--restart). At most 64 characters, [A-Za-z0-9_-]."""
    key = f"{job_type}\0{directory}" + (f"\0{instance}" if instance else "")
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:55] or "run"
    return f"{clean}-{digest}"


def start_run(name: str | None = None, group: str | None = None, directory: str | None = None,
              job_type: str | None = None, tensorboard_dir: str | None = None, instance: str = ""):  # fmt: skip
    """The W&B run of this process (started once); with a name, one that resumes by its stable id; with
    tensorboard_dir, one that mirrors the TensorBoard events written under it."""
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
    return wandb.init(name=name, group=group, dir=directory, job_type=job_type, sync_tensorboard=bool(tensorboard_dir),
                      settings=wandb.Settings(save_code=False), **identity)  # fmt: skip


def make_tensorboard_logger(log_dir: str, wandb_name: str, wandb_group: str, wandb_dir: str, wandb_job_type: str,
                            wandb_instance: str = "", **writer_kwargs):  # fmt: skip
    """SAM3's `make_tensorboard_logger`, with W&B mirroring its scalars on rank 0."""
    from sam3.train.utils.logger import make_tensorboard_logger as sam3_tensorboard_logger
    from sam3.train.utils.train_utils import get_machine_local_and_dist_rank

    if get_machine_local_and_dist_rank()[1] == 0:
        start_run(wandb_name, wandb_group, wandb_dir, wandb_job_type, tensorboard_dir=log_dir, instance=wandb_instance)
    return sam3_tensorboard_logger(log_dir, **writer_kwargs)
