"""A fake ``benchmark`` package: if the evaluator imported it, every score would be perfect."""
SHADOWED = True
