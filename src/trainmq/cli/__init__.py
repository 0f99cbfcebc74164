"""The ``trainmq`` command."""
