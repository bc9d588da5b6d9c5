"""A pytest plugin that fails the session when a test was skipped for an unexpected reason.

A skip in CI usually hides a broken environment: a lalsuite that fails to import quietly
skips every gravitational-wave test, a missing SLURM every cluster test. With the check
on, each skip reason (of a test, a fixture or a whole module) must fully match one of the
regular expressions of ``tests/allowed_skips.txt`` (or of the file that
``BNRE_ALLOWED_SKIPS`` names), where every pattern has a comment saying why that skip is
expected; any other skip fails the session with a message naming the skipped tests.

The check is on when ``BNRE_STRICT_SKIPS=1`` (``.ci/run`` sets it) or, unless
``BNRE_STRICT_SKIPS=0``, when ``CI=true``; local runs skip freely. ``tests/conftest.py``
loads this plugin; elsewhere use ``pytest -p skip_policy`` with ``tests`` on the path.
Expected failures (xfail) are not skips.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ALLOWED = Path(__file__).resolve().with_name("allowed_skips.txt")

_skips: list[tuple[str, str]] = []


def enabled() -> bool:
    flag = os.environ.get("BNRE_STRICT_SKIPS")
    if flag is not None and flag != "":
        return flag.lower() not in ("0", "false", "no")
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def allowed_patterns(path: Path) -> list[re.Pattern]:
    """The patterns of an allowed-skips file: one per line, each right below a comment."""
    patterns, documented = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            documented = False
        elif line.startswith("#"):
            documented = True
        else:
            if not documented:
                raise ValueError(f"{path}:{number}: pattern {line!r} has no comment above it saying why it is allowed")
            try:
                patterns.append(re.compile(line))
            except re.error as error:
                raise ValueError(f"{path}:{number}: bad pattern {line!r} ({error})") from None
            documented = False
    return patterns


def skip_reason(report) -> str:
    longrepr = report.longrepr
    message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return message.removeprefix("Skipped: ")


def _record(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skips.append((report.nodeid or str(getattr(report, "fspath", "")), skip_reason(report)))


def pytest_runtest_logreport(report) -> None:
    _record(report)


def pytest_collectreport(report) -> None:
    _record(report)


def unexpected_skips() -> list[tuple[str, str]]:
    path = Path(os.environ.get("BNRE_ALLOWED_SKIPS") or ALLOWED)
    patterns = allowed_patterns(path)
    return [(node, reason) for node, reason in _skips if not any(p.fullmatch(reason) for p in patterns)]


def pytest_sessionfinish(session, exitstatus) -> None:
    if not enabled():
        return
    session.config._unexpected_skips = unexpected = unexpected_skips()
    if unexpected and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    unexpected = getattr(terminalreporter.config, "_unexpected_skips", None)
    if not unexpected:
        return
    path = os.environ.get("BNRE_ALLOWED_SKIPS") or ALLOWED
    terminalreporter.section("unexpected skips", sep="=", red=True, bold=True)
    terminalreporter.line(
        f"{len(unexpected)} skip(s) match no pattern of {path} (BNRE_STRICT_SKIPS / CI is set): "
        "install what they need, or list the reason there with a comment saying why it is expected."
    )
    for node, reason in unexpected:
        terminalreporter.line(f"UNEXPECTED SKIP {node}: {reason}", red=True)
