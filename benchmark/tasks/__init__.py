"""Built-in tasks; importing this package registers them."""
from .planted_features import PlantedFeatures
from .scaling_exponents import ScalingExponents  # noqa: F401  (registers scaling-exponents)

__all__ = ["PlantedFeatures"]
