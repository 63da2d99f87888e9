"""How a streamed reply is cut into the windows the guard scans."""

from __future__ import annotations

import pytest

from bastion.llm.windows import OutputWindows


def cut(text: str, min_chars: int, max_chars: int, chunk: int = 1) -> list[str]:
    windows = OutputWindows(min_chars, max_chars)
    out: list[str] = []
    for i in range(0, len(text), chunk):
        out += windows.feed(text[i : i + chunk])
    rest = windows.flush()
    return [*out, rest] if rest else out


def test_windows_end_at_sentence_ends() -> None:
    assert cut("One. Two! Three?\nFour", 1, 100) == ["One. ", "Two! ", "Three?\n", "Four"]


def test_short_sentences_are_grouped_up_to_min_chars() -> None:
    assert cut("A. B. C. D. E.", 7, 100) == ["A. B. C. ", "D. E."]


def test_a_dot_inside_a_token_is_not_a_sentence_end() -> None:
    text = "Write to a.b@example.com or visit example.org today. Done"
    assert cut(text, 1, 100) == ["Write to a.b@example.com or visit example.org today. ", "Done"]


def test_a_sentence_end_waits_for_the_next_character() -> None:
    windows = OutputWindows(1, 100)
    assert windows.feed("Version 2.") == []
    assert windows.feed("5 is out. ") == ["Version 2.5 is out. "]


def test_long_text_without_sentence_ends_is_cut_at_a_word_boundary() -> None:
    text = "word " * 10  # 50 characters, no sentence end
    windows = cut(text, 4, 12)
    assert all(len(w) <= 12 for w in windows)
    assert all(w.endswith(" ") for w in windows)
    assert "".join(windows) == text


def test_a_token_longer_than_max_chars_is_cut_at_max_chars() -> None:
    assert cut("x" * 25, 4, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_chunking_does_not_change_the_windows() -> None:
    text = "First sentence here. Second, longer sentence follows! Third? " * 3
    expected = cut(text, 20, 80, chunk=len(text))
    assert cut(text, 20, 80, chunk=1) == expected
    assert cut(text, 20, 80, chunk=7) == expected


@pytest.mark.parametrize(("low", "high"), [(0, 10), (11, 10)])
def test_bounds_are_checked(low: int, high: int) -> None:
    with pytest.raises(ValueError):
        OutputWindows(low, high)
