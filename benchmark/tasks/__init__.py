"""Built-in tasks; importing this package registers them."""
from .planted_features import PlantedFeatures
from .scaling_exponents import ScalingExponents  # noqa: F401  (registers scaling-exponents)
from .rare_behavior import RareBehavior, RareBehaviorWhitebox  # noqa: F401  (registers both tracks)
from .grokking_onset import GrokkingOnset, GrokkingOnsetWithTest  # noqa: F401  (registers both tracks)

__all__ = ["PlantedFeatures"]
