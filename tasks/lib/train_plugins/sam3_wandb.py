"""Runs inside SAM3's training process (the training venv), never in the launcher.

run.* puts this folder on the job's PYTHONPATH and sets
`trainer.logging.tensorboard_writer._target_=sam3_wandb.make_tensorboard_logger` when W&B logging is on
(tasks/lib/tracking.py). SAM3 0.1.4 never reads `trainer.logging.wandb_writer`; its Logger builds only
the TensorBoard writer, so this wraps that: rank 0 starts a W&B run that mirrors TensorBoard
(`sync_tensorboard=True`), then SAM3's own TensorBoard logger is returned unchanged.

Everything about the run comes from the environment run.* sets: WANDB_PROJECT, WANDB_ENTITY, WANDB_MODE,
WANDB_DIR, WANDB_RUN_ID with WANDB_RESUME=allow (a requeued job continues its run), WANDB_NAME,
WANDB_RUN_GROUP; the API key from the inherited environment. No key is ever passed in code or config.
"""


def start_run(sync_tensorboard: bool = True):
    """The W&B run for this process (started once); its settings come from WANDB_* variables."""
    import wandb

    if wandb.run is not None:
        return wandb.run
    return wandb.init(sync_tensorboard=sync_tensorboard, settings=wandb.Settings(save_code=False))


def make_tensorboard_logger(log_dir: str, **writer_kwargs):
    """SAM3's `make_tensorboard_logger`, with W&B mirroring its scalars on rank 0."""
    from sam3.train.utils.logger import make_tensorboard_logger as sam3_tensorboard_logger
    from sam3.train.utils.train_utils import get_machine_local_and_dist_rank

    if get_machine_local_and_dist_rank()[1] == 0:
        start_run()
    return sam3_tensorboard_logger(log_dir, **writer_kwargs)
