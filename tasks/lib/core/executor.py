"""invoke's Executor, made Makefile-style about --dry-run (named by tasks.executor_class in invoke.yaml).

invoke runs a task's pre-tasks with their defaults: it cannot hand them the task's own flags. So
`inv run.train --dry-run` would build the training environment before printing what it would run.
Here a task called with dry_run=True has its pre- and post-tasks (all the way down) called with
dry_run=True too, when they take that flag, like `make -n`: each step says what it would do, and
nothing changes. Everything else is invoke's behaviour, deduplication included.
"""

import inspect

from invoke import Call, Executor, Task


def takes_dry_run(call: Call) -> bool:
    return "dry_run" in inspect.signature(call.task.body).parameters


def dry(call: Call) -> Call:
    """The same call with dry_run=True, when its task has that flag."""
    if not takes_dry_run(call) or call.kwargs.get("dry_run"):
        return call
    return call.clone(with_={"kwargs": {**call.kwargs, "dry_run": True}})


class MakeExecutor(Executor):
    def expand_calls(self, calls):
        expanded = []
        for call in calls:
            if isinstance(call, Task):
                call = Call(call)
            pre, post = self.expand_calls(call.pre), self.expand_calls(call.post)
            if call.kwargs.get("dry_run"):
                pre, post = [dry(c) for c in pre], [dry(c) for c in post]
            expanded += [*pre, call, *post]
        return expanded
