"""The streaming <thinking> splitter: the rules of kiro-protocol.md 3.6, and chunking never matters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_tray.protocol.thinking import Piece, ThinkingSplitter


def split(chunks: list[str]) -> list[Piece]:
    splitter = ThinkingSplitter()
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += splitter.feed(chunk)
    pieces += splitter.flush()
    return pieces


def joined(pieces: list[Piece]) -> tuple[str, str]:
    thinking = "".join(text for kind, text in pieces if kind == "thinking")
    text = "".join(text for kind, text in pieces if kind == "text")
    return thinking, text


@pytest.mark.parametrize(
    ("response", "thinking", "text"),
    [
        ("<thinking>\nPlan it.\n</thinking>\n\nThe answer.", "Plan it.", "The answer."),
        ("  \n<thinking>Plan.</thinking>\nDone", "Plan.", "Done"),
        ("<thinking>\n\nTwo newlines</thinking>\n\nx", "\nTwo newlines", "x"),
        ("No tags here.", "", "No tags here."),
        ("  Leading space kept", "", "  Leading space kept"),
        (
            "Text first <thinking>not thinking</thinking>\n",
            "",
            "Text first <thinking>not thinking</thinking>\n",
        ),
        ("<thinking>only thinking, never closed", "only thinking, never closed", ""),
        ("<thinking>a</thinking>   \n\n", "a", ""),
        ("<thinking>a</thinking>", "a", ""),
        ("<thinking>a</thinking>\n\n    indented code", "a", "    indented code"),
        ("<thinking>a</thinking> \t\r\n\r\nb", "a", "b"),
        ("<thinkin", "", "<thinkin"),
        ("", "", ""),
        ("   ", "", "   "),
    ],
)
def test_rules(response: str, thinking: str, text: str) -> None:
    assert joined(split([response])) == (thinking, text)


@pytest.mark.parametrize(
    "mention",
    ["`</thinking>`", '"</thinking>"', "'</thinking>'", "the tag </thinking> closes it", "</thinking>` here"],
)
def test_mentions_of_the_closing_tag_stay_inside_thinking(mention: str) -> None:
    response = f"<thinking>\nI could write {mention} in code.\n</thinking>\n\nAnswer"
    assert joined(split([response])) == (f"I could write {mention} in code.", "Answer")


def test_close_tag_followed_by_text_on_the_same_line_is_a_mention() -> None:
    response = "<thinking>x</thinking>y\nmore</thinking>\n\nAnswer"
    assert joined(split([response])) == ("x</thinking>y\nmore", "Answer")


def test_pieces_stream_before_the_end() -> None:
    splitter = ThinkingSplitter()
    assert splitter.feed("<thinking>\nfirst thoughts ") == [("thinking", "first thoughts")]
    assert splitter.in_thinking
    # A possible tag start is held back, nothing more.
    assert splitter.feed("and more</thi") == [("thinking", " and more")]
    assert splitter.feed("nking>") == []  # the tag is complete but undecided until what follows
    assert splitter.feed("\n\nHello") == [("text", "Hello")]
    assert not splitter.in_thinking
    assert splitter.feed(" world") == [("text", " world")]
    assert splitter.flush() == []


def test_plain_text_is_released_as_soon_as_it_cannot_be_a_tag() -> None:
    splitter = ThinkingSplitter()
    assert splitter.feed("  <thi") == []
    assert splitter.feed("s is text") == [("text", "  <this is text")]


def test_tag_split_at_every_offset() -> None:
    response = "<thinking>\nabc `</thinking>` def\n</thinking>\n\nxyz"
    expected = split([response])
    for i in range(len(response) + 1):
        for j in range(i, len(response) + 1):
            assert joined(split([response[:i], response[i:j], response[j:]])) == joined(expected)


_TOKENS = [
    "<thinking>",
    "</thinking>",
    "<think",
    "ing>",
    "</",
    "\n",
    "\n\n",
    " ",
    "\t",
    "\r\n",
    "`",
    '"',
    "'",
    "a",
    "Zé",
    "日本",
    "<",
    ">",
    "x y",
]

responses = st.one_of(
    st.lists(st.sampled_from(_TOKENS), max_size=30).map("".join),
    st.text(alphabet=st.sampled_from("<>/thinkg \n`'\"ab"), max_size=60),
)


@st.composite
def chunkings(draw: st.DrawFn) -> tuple[str, list[str]]:
    response = draw(responses)
    cuts = sorted(draw(st.lists(st.integers(0, len(response)), max_size=8)))
    chunks = [response[a:b] for a, b in zip([0, *cuts], [*cuts, len(response)], strict=True)]
    return response, chunks


@settings(max_examples=400, deadline=None)
@given(chunkings())
def test_any_chunking_gives_the_unsplit_result(case: tuple[str, list[str]]) -> None:
    response, chunks = case
    whole = split([response])
    pieces = split(chunks)
    assert joined(pieces) == joined(whole)
    assert all(text for _, text in pieces), "no empty pieces"
    # Thinking always comes first; once text started, no more thinking.
    kinds = [kind for kind, _ in pieces]
    assert kinds == sorted(kinds, key=lambda k: k == "text")
