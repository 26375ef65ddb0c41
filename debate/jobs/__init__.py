"""Rescoring jobs: selection of stale or changed hypotheses, stored batches, the batch runner,
the task queue and its workers.

May import the engine and everything below it; never a face.
"""
