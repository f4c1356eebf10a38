"""Plain logic behind the tasks: no @task here, importable and testable without invoke."""
