from .task import GrokkingOnset, GrokkingOnsetWithTest

__all__ = ["GrokkingOnset", "GrokkingOnsetWithTest"]
