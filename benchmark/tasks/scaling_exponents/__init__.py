from .task import ScalingExponents

__all__ = ["ScalingExponents"]
