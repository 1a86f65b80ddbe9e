from .task import PlantedFeatures

__all__ = ["PlantedFeatures"]
