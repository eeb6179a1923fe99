"""core/console.py: the plain table, byte sizes for people, and the progress line on a terminal and in a log."""

from __future__ import annotations

import io

import pytest

from prefect_julia.core.console import Progress, human_bytes, table


def test_a_table_is_left_aligned_under_a_rule_as_wide_as_each_column() -> None:
    text = table(["name", "state"], [["dev", "up"], ["production", 3]])
    assert text.splitlines() == [
        "name        state",
        "----------  -----",
        "dev         up",
        "production  3",
    ]


def test_a_table_without_rows_is_its_header_and_rule() -> None:
    assert table(["a", "bb"], []) == "a  bb\n-  --"


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises((ValueError, IndexError)):
        table(["a", "b"], [["only one"]])


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (5 * 1024**2, "5.0 MB"),
        (3 * 1024**4, "3072.0 GB"),
    ],
)
def test_human_bytes(size: int, shown: str) -> None:
    assert human_bytes(size) == shown


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_in_a_log_writes_a_line_every_five_seconds() -> None:
    out = io.StringIO()
    progress = Progress("starting", out)
    for elapsed in (0.0, 1.0, 4.9, 5.0, 9.0, 10.2):
        progress(elapsed)
    progress.done()
    assert out.getvalue() == "... starting 0 s\n... starting 5 s\n... starting 10 s\n"


def test_progress_on_a_terminal_is_rewritten_in_place_and_wiped_when_done() -> None:
    out = _Tty()
    progress = Progress("starting", out)
    progress(0.0)
    progress(1.25)
    progress.done()
    written = out.getvalue()
    assert written.startswith("\r| starting   0.0 s\r/ starting   1.2 s")
    assert "\n" not in written
    assert written.endswith("\r" + " " * (len("starting") + 12) + "\r")


def test_progress_on_a_terminal_that_never_drew_writes_nothing_when_done() -> None:
    out = _Tty()
    Progress("idle", out).done()
    assert out.getvalue() == ""
