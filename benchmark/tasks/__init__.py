"""Built-in tasks; importing this package registers them."""
from .planted_features import PlantedFeatures

__all__ = ["PlantedFeatures"]
