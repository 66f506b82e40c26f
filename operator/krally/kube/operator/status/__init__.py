"""The operator's status logic: pure functions from a task, its Jobs and pods to its status."""
