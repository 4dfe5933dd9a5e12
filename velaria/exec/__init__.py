"""Execution: operators (``operators``, ``window``) and the batch driver (``driver``)."""
