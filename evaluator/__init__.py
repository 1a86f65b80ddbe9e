"""PhaseBench evaluator: submissions, sandboxes, the runner, the results store and the CLI."""
__version__ = "0.1.0"
__all__ = ["__version__"]
