from .task import RareBehavior, RareBehaviorWhitebox

__all__ = ["RareBehavior", "RareBehaviorWhitebox"]
