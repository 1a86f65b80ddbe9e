"""What the evaluator writes and both the evaluator and the website read about results, in one place:

- :mod:`.summary`: the stored summary of an evaluation (pydantic, versioned by ``RECORD_FORMAT``);
- :mod:`.ranking`: stored evaluations ranked by a task's headline metric;
- :mod:`.board`: a task's board, its rank intervals, skill and detectable difference, and the
  snapshot of them the evaluator stores for the read-only website (versioned by ``SNAPSHOT_FORMAT``);
- :mod:`.report`: the report of a pull request's evaluations (``phasebench ci report-data``);
- :mod:`.dataset`: the published results dataset (export and import of the whole database).

Import from the modules; this package imports nothing, so that the store can take ``RECORD_FORMAT``
from :mod:`.summary` while :mod:`.ranking` and :mod:`.dataset` read the store.
"""
