"""Runs in the training venv (never in the launcher): cluster runs submitted as SLURM job arrays
through submitit, each array task running SAM3's own SubmititRunner, which builds SAM3's Trainer.

SAM3's train.py submits an array task by task, resolving and writing the whole config twice per task
(about 0.2 s each: 100 datasets take 25 s, a 1,000-task grid minutes). Here each task carries only
its config's name, its index and its folder; the task composes the config where it runs, writes the
config.yaml and config_resolved.yaml SAM3's train.py would have written (with its own index, so each
names its own dataset), and hands it to SAM3's SubmititRunner, the same object train.py submits.
submitit requeues it on preemption or timeout (Checkpointable), and SAM3 resumes from the task's checkpoint.

The launcher (tasks/lib/run/slurm.py) runs `submit_main` with a JSON description of the arrays on stdin
and reads one JSON line per array back: {"array": k, "job_ids": [...]} or {"array": k, "error": "..."}.
"""

import json
import os
import random
import sys

import submitit


class ArrayTask(submitit.helpers.Checkpointable):
    """One task: compose `config_name`, set its job-array index, run SAM3's SubmititRunner."""

    def __init__(self, config_name, task_index, experiment_dir, port):
        self.config_name = config_name
        self.task_index = task_index
        self.experiment_dir = experiment_dir
        self.port = port

    def __call__(self):
        from hydra import compose, initialize_config_module
        from hydra.core.global_hydra import GlobalHydra
        from omegaconf import OmegaConf
        from sam3.train import train as sam3_train

        if not GlobalHydra.instance().is_initialized():
            initialize_config_module("sam3.train", version_base="1.2")
        cfg = compose(config_name=self.config_name)
        if self.task_index is not None:
            cfg.submitit.job_array.task_index = self.task_index
        if submitit.JobEnvironment().global_rank == 0:
            os.makedirs(self.experiment_dir, exist_ok=True)
            for name, text in (("config.yaml", OmegaConf.to_yaml(cfg)), ("config_resolved.yaml", _resolved(cfg))):
                path = os.path.join(self.experiment_dir, name)
                with open(path + ".tmp", "w") as handle:
                    handle.write(text)
                os.replace(path + ".tmp", path)
        return sam3_train.SubmititRunner(self.port, cfg)()


def _resolved(cfg):
    """The config resolved with SAM3's resolvers, which are then taken away again: SAM3's
    SubmititRunner registers them itself, and registering twice is an error."""
    from omegaconf import OmegaConf
    from omegaconf.basecontainer import BaseContainer
    from sam3.train.utils.train_utils import register_omegaconf_resolvers

    before = dict(BaseContainer._resolvers)
    try:
        register_omegaconf_resolvers()
        return OmegaConf.to_yaml(cfg, resolve=True)
    finally:
        BaseContainer._resolvers.clear()
        BaseContainer._resolvers.update(before)


def submit(arrays, port_range):
    """Submit each array in turn (a later one may wait for an earlier one); yields one report each."""
    array_ids = []
    for number, array in enumerate(arrays):
        try:
            executor = submitit.AutoExecutor(folder=array["folder"], cluster="slurm")
            parameters = dict(array["job"])
            extra = dict(parameters.pop("slurm_additional_parameters", {}))
            if array.get("after") is not None:
                extra["dependency"] = f"afterany:{array_ids[array['after']]}"
            executor.update_parameters(
                **parameters, slurm_additional_parameters=extra, slurm_array_parallelism=array["parallelism"]
            )
            ports = random.sample(range(port_range[0], port_range[1] + 1), k=len(array["tasks"]))
            runners = [
                ArrayTask(array["config_name"], task["index"], task["experiment_dir"], port)
                for task, port in zip(array["tasks"], ports, strict=True)
            ]
            if array["tasks"][0]["index"] is None:
                jobs = [executor.submit(runners[0])]
            else:
                with executor.batch():
                    jobs = [executor.submit(runner) for runner in runners]
        except Exception as error:  # sbatch refused, or the folder cannot be written: say so and stop
            yield {"array": number, "error": f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[-1]}"}
            return
        ids = [job.job_id for job in jobs]
        array_ids.append(ids[0].split("_")[0])
        yield {"array": number, "job_ids": ids}


def submit_main():
    spec = json.load(sys.stdin)
    failed = False
    for report in submit(spec["arrays"], spec["port_range"]):
        failed = failed or "error" in report
        print(json.dumps(report), flush=True)
    return 1 if failed else 0
