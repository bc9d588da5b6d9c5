"""CI's check that no test was skipped unexpectedly (tests/skip_policy.py), on tiny sessions."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from skip_policy import ALLOWED, allowed_patterns  # noqa: E402

TINY = '''
import pytest

def test_runs():
    pass

def test_skipped_here():
    pytest.skip("SLURM is not installed (missing slurmd)")

@pytest.mark.skipif(True, reason="rule all runs no command")
def test_skipped_by_mark():
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_failure():
    assert False
'''


def session(tmp_path, source=TINY, allowed=None, **env):
    """Run pytest with the plugin on one test file; (exit status, output)."""
    (tmp_path / "test_tiny.py").write_text(source)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "BNRE_STRICT_SKIPS", "BNRE_ALLOWED_SKIPS", "PYTEST_ADDOPTS")}
    clean.update(PYTHONPATH=str(TESTS), **env)
    if allowed is not None:
        (tmp_path / "allowed.txt").write_text(allowed)
        clean["BNRE_ALLOWED_SKIPS"] = str(tmp_path / "allowed.txt")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "skip_policy", "-p", "no:cacheprovider", "-q", "-rs", "test_tiny.py"],
        cwd=tmp_path, env=clean, capture_output=True, text=True,
    )
    return result.returncode, result.stdout + result.stderr


def test_an_unlisted_skip_fails_the_session_and_is_named(tmp_path):
    status, output = session(tmp_path, BNRE_STRICT_SKIPS="1")
    assert status == 1, output
    assert "UNEXPECTED SKIP test_tiny.py::test_skipped_here: SLURM is not installed (missing slurmd)" in output
    # the listed reason and the expected failure are not reported
    assert "test_skipped_by_mark" not in output.split("unexpected skips")[-1]
    assert "test_expected_failure" not in output.split("unexpected skips")[-1]


def test_ci_true_turns_the_check_on_and_local_runs_skip_freely(tmp_path):
    assert session(tmp_path, CI="true")[0] == 1
    assert session(tmp_path, CI="true", BNRE_STRICT_SKIPS="0")[0] == 0
    status, output = session(tmp_path)  # neither set: a local run
    assert status == 0 and "2 skipped" in output and "UNEXPECTED" not in output, output


def test_listed_skips_pass(tmp_path):
    allowed = "# why: tests/test_envs.py\nrule \\w+ runs no command\n# why: SLURM\nSLURM is not installed.*\n"
    status, output = session(tmp_path, allowed=allowed, BNRE_STRICT_SKIPS="1")
    assert status == 0 and "UNEXPECTED" not in output, output
    # a pattern must match the whole reason, not a part of it
    status, output = session(tmp_path, allowed="# why\nSLURM\n# why\nrule all runs no command\n", BNRE_STRICT_SKIPS="1")
    assert status == 1 and "UNEXPECTED SKIP test_tiny.py::test_skipped_here" in output, output


def test_a_module_skipped_at_import_fails_the_session(tmp_path):
    # what a broken lalsuite does to tests/tasks/test_gravitational_waves.py
    source = 'import pytest\nlal = pytest.importorskip("bnre_no_such_module")\n\ndef test_a():\n    pass\n'
    status, output = session(tmp_path, source, BNRE_STRICT_SKIPS="1")
    assert status == 1, output
    assert "UNEXPECTED SKIP test_tiny.py: could not import 'bnre_no_such_module'" in output


def test_failures_keep_their_exit_status(tmp_path):
    source = "import pytest\n\ndef test_fails():\n    assert False\n\ndef test_skips():\n    pytest.skip('odd')\n"
    status, output = session(tmp_path, source, BNRE_STRICT_SKIPS="1")
    assert status == 1 and "UNEXPECTED SKIP test_tiny.py::test_skips: odd" in output, output


def test_an_undocumented_pattern_is_refused(tmp_path):
    path = tmp_path / "allowed.txt"
    path.write_text("# why the first is fine\nfirst\nsecond\n")
    with pytest.raises(ValueError, match=r"allowed.txt:3: pattern 'second' has no comment above it"):
        allowed_patterns(path)


def test_the_allowed_list_is_documented_and_excludes_what_ci_installs():
    patterns = allowed_patterns(ALLOWED)
    assert patterns

    def allowed(reason):
        return any(p.fullmatch(reason) for p in patterns)

    assert allowed("rule all runs no command")
    # the skips of this suite that CI (all extras, SLURM, the full checkout) must not see
    for reason in (
        "lalsuite not installed (the gw extra)",
        "the paper's tasks include gravitational_waves (the gw extra)",
        "could not import 'lal': No module named 'lal'",
        "could not import 'lalsimulation': No module named 'lalsimulation'",
        "SLURM is not installed (missing slurmctld, slurmd; apt-get install slurm-wlm munge)",
        "no reference loop",
    ):
        assert not allowed(reason), reason
