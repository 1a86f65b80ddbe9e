"""Tries to take over the scorer by import tricks: its folder holds a ``benchmark`` package whose
task scores everything as perfect, a ``sitecustomize``/``usercustomize`` and a ``.pth`` file that
would run at interpreter start, and (variant numpy) a ``numpy.py`` that shadows numpy for the worker."""
import os

from hostile import TARGETS, attempt, contained


def run(problem):
    import benchmark  # the submission's own package: only this process sees it

    if TARGETS["variant"] == "numpy":
        import numpy
        return {"atoms": numpy.zeros((1, problem["dim"]))}  # the shadow's zeros: not a real array
    steps = [("startup hooks ran", lambda: os.path.exists(os.path.join(TARGETS["host_tmp"], TARGETS["marker_name"]))),
             ("scorer replaced", lambda: benchmark.SHADOWED and False)]
    for label, step in steps:
        attempt(label, step)
    contained()
