"""The real `inv` program with env.weights, env.wandb and env.dvc mounted, whether or not tasks.py mounts them yet.

Run as `python tests/inv_env.py env.weights ...` from the project root: invoke loads tasks.py and invoke.yaml
exactly as `inv` does; the tracking tasks are added to the `env` namespace when tasks.py lacks them.
"""

import sys

from invoke import Collection, Program


class EnvProgram(Program):
    def load_collection(self) -> None:
        super().load_collection()
        from tasks import env_tracking

        env = self.collection.collections.get("env")
        if env is None:
            env = Collection("env")
            self.collection.add_collection(env)
        for name in ("weights", "wandb", "dvc"):
            if name not in env.tasks:
                env.add_task(getattr(env_tracking, name), name)


if __name__ == "__main__":
    sys.exit(EnvProgram(name="inv", binary="inv").run())
