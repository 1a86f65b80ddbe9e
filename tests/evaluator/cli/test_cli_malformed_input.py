"""Bad command-line arguments: a usage error that says what is wrong, never a traceback."""
import pytest
from click.testing import CliRunner

from evaluator.cli import main
from tests.builders import write_submission


@pytest.mark.parametrize("args, expected", [
    (["evaluate", "{sub}", "--task", "planted-featurs"], "did you mean 'planted-features'"),
    (["data", "build", "--task", "planted-featurs"], "did you mean 'planted-features'"),
    (["evaluate", "{sub}", "--time-limit", "-1"], "Invalid value for '--time-limit'"),
    (["evaluate", "{sub}", "--memory-limit", "lots"], "Invalid value for '--memory-limit'"),
    (["evaluate", "{sub}", "--output-limit", "0"], "Invalid value for '--output-limit'"),
    (["evaluate", "{sub}", "--sandbox", "chroot"], "Invalid value for '--sandbox'"),
    (["evaluate", "{sub}", "--split", "validation"], "Invalid value for '--split'"),
    (["evaluate", "/nonexistent/submission", "--sandbox", "none", "--db", "{db}"], "not a folder"),
    (["validate", "/nonexistent/submission"], "not a folder"),
])
def test_bad_arguments_get_a_clear_error(tmp_path, args, expected):
    sub = write_submission(tmp_path)
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    result = CliRunner().invoke(main, [a.format(sub=sub, db=db) for a in args])
    assert result.exit_code != 0
    assert expected in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
