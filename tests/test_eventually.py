"""harness.eventually, the one way the tests wait: its value, its patience with exceptions, its message."""

from __future__ import annotations

import pytest

from harness import eventually


def test_the_first_truthy_value_is_returned() -> None:
    answers = iter([None, 0, "", [], ["ready"], ["later"]])
    assert eventually(lambda: next(answers), 10, "a list") == ["ready"]


def test_an_exception_counts_as_not_yet() -> None:
    tries: list[int] = []

    def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionRefusedError("not listening yet")
        return "up"

    assert eventually(flaky, 10, "the server") == "up" and len(tries) == 3


def test_giving_up_names_what_was_awaited_and_the_last_value_seen() -> None:
    with pytest.raises(AssertionError, match=r"after 0.2 s waiting for the pid file; last seen: \[\]$"):
        eventually(lambda: [], 0.2, "the pid file")


def test_giving_up_names_the_last_exception_seen() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("port 4200")

    with pytest.raises(AssertionError, match=r"waiting for the API; last seen: ConnectionRefusedError\('port 4200'\)"):
        eventually(refused, 0.2, "the API")


def test_an_interrupt_is_not_swallowed() -> None:
    def interrupted() -> bool:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        eventually(interrupted, 10, "anything")
