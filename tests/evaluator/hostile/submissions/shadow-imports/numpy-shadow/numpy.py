"""Copied to numpy.py for the numpy variant: the worker's own numpy import finds this first."""
def zeros(shape, *a, **k):
    return [[1.0] * shape[1]] * shape[0]

def asarray(value, *a, **k):
    raise RuntimeError("shadow numpy reached the worker")

def ascontiguousarray(value):
    return value
