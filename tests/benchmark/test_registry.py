import pytest

from benchmark.registry import DuplicateNameError, Registry, UnknownNameError
from benchmark.task import get_task


def test_duplicate_name_raises():
    reg: Registry[int] = Registry("widget")
    reg.register("alpha", 1)
    with pytest.raises(DuplicateNameError, match="widget 'alpha' is already registered"):
        reg.register("alpha", 2)


def test_miss_suggests_close_names():
    reg: Registry[int] = Registry("widget")
    reg.register("planted-features", 1)
    with pytest.raises(UnknownNameError, match="did you mean 'planted-features'"):
        reg.get("planted-feature")


def test_task_lookup_suggests():
    with pytest.raises(UnknownNameError, match="unknown task 'planted_features'; did you mean 'planted-features'"):
        get_task("planted_features")
