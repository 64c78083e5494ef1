"""Each history repair rule on its own, then the runner (kiro-protocol.md 2.6 to 2.9)."""

from __future__ import annotations

import itertools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_tray.protocol.conversation import (
    ImagePart,
    Part,
    TextPart,
    ThinkingPart,
    Tool,
    ToolResultPart,
    ToolUsePart,
    Turn,
)
from kiro_tray.protocol.history import (
    CONTINUE,
    EMPTY_RESULT,
    HISTORY_TOOL_DESCRIPTION,
    PLACEHOLDER,
    TOOL_RESULTS_PLACEHOLDER,
    declare_history_tools,
    dedupe_tool_ids,
    drop_unanswered_tool_uses,
    ensure_user_first,
    ensure_user_last,
    fill_empty_text,
    fold_thinking,
    merge_same_role,
    move_misplaced_parts,
    orphan_results_to_text,
    repair_history,
    strip_empty_input_keys,
)

PNG = "iVBORw0KGgo="


def user(*parts: Part | str) -> Turn:
    return Turn("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def assistant(*parts: Part | str) -> Turn:
    return Turn("assistant", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def use(tool_id: str, name: str = "Read", **tool_input: object) -> ToolUsePart:
    return ToolUsePart(tool_id, name, dict(tool_input))


def result(tool_id: str, content: str = "ok", *images: ImagePart, error: bool = False) -> ToolResultPart:
    return ToolResultPart(tool_id, content, tuple(images), error)


# --- one rule at a time ------------------------------------------------------------------------------


def test_fold_thinking_wraps_reasoning_in_tags_and_drops_empty_reasoning() -> None:
    turns = (user("q"), assistant(ThinkingPart("plan"), "answer", ThinkingPart("  ")))
    fixed, changed = fold_thinking(turns)
    assert changed
    assert fixed[1].parts == (TextPart("<thinking>plan</thinking>"), TextPart("answer"))
    assert fixed[1].text() == "<thinking>plan</thinking>\n\nanswer"


def test_fold_thinking_leaves_plain_turns_alone() -> None:
    turns = (user("q"), assistant("a"))
    assert fold_thinking(turns) == (turns, False)


def test_move_misplaced_parts_turns_impossible_parts_into_text() -> None:
    turns = (user("q", use("t1")), assistant("a", result("t1", "r"), ImagePart("image/png", PNG)))
    fixed, changed = move_misplaced_parts(turns)
    assert changed
    assert all(isinstance(p, TextPart) for p in fixed[0].parts + fixed[1].parts)
    assert "[Tool call Read (t1)]" in fixed[0].text()
    assert "[Tool result (t1)]\nr" in fixed[1].text()
    assert "[image omitted]" in fixed[1].text()


def test_merge_same_role_joins_consecutive_turns_and_drops_empty_ones() -> None:
    turns = (
        user("a"),
        user("b"),
        Turn("assistant", ()),
        assistant("c", use("t1")),
        assistant("d"),
        user("e"),
    )
    fixed, changed = merge_same_role(turns)
    assert changed
    assert [t.role for t in fixed] == ["user", "assistant", "user"]
    assert fixed[0].text() == "a\n\nb"
    assert fixed[1].parts == (TextPart("c"), use("t1"), TextPart("d"))


def test_merge_same_role_reports_no_change_for_alternating_turns() -> None:
    turns = (user("a"), assistant("b"), user("c"))
    assert merge_same_role(turns) == (turns, False)


def test_ensure_user_last_moves_a_prefill_into_history_and_sends_continue() -> None:
    fixed, changed = ensure_user_last((user("q"), assistant("Here is")))
    assert changed
    assert fixed[-1] == user(CONTINUE)
    assert fixed[1] == assistant("Here is")


def test_ensure_user_last_drops_a_bare_json_prefill() -> None:
    fixed, changed = ensure_user_last((user("give JSON"), assistant(" { ")))
    assert changed
    assert fixed == (user("give JSON"),)


def test_ensure_user_last_keeps_a_brace_prefill_that_calls_tools() -> None:
    fixed, _ = ensure_user_last((user("q"), assistant("{", use("t1"))))
    assert fixed[-1] == user(CONTINUE)


def test_ensure_user_first_puts_a_placeholder_user_turn_in_front() -> None:
    fixed, changed = ensure_user_first((assistant("hello"), user("hi")))
    assert changed
    assert fixed[0] == user(PLACEHOLDER)
    assert ensure_user_first(fixed) == (fixed, False)


def test_ensure_user_first_creates_a_turn_for_an_empty_conversation() -> None:
    assert ensure_user_first(()) == ((user(PLACEHOLDER),), True)


def test_dedupe_tool_ids_keeps_the_first_call_and_the_first_result() -> None:
    turns = (
        user("q"),
        assistant(use("t1"), use("t1", "Bash")),
        user(result("t1", "first"), result("t1", "second")),
        assistant(use("t1")),
        user("next"),
    )
    fixed, changed = dedupe_tool_ids(turns)
    assert changed
    assert fixed[1].parts == (use("t1"),)
    assert fixed[2].parts == (result("t1", "first"),)
    assert fixed[3].parts == ()


def test_orphan_results_become_text_and_keep_their_images() -> None:
    image = ImagePart("image/png", PNG)
    turns = (
        user(result("gone", "old output", image)),
        assistant(use("t1")),
        user(result("t1"), result("x", error=True)),
    )
    fixed, changed = orphan_results_to_text(turns)
    assert changed
    assert fixed[0].parts == (TextPart("[Tool result (gone)]\nold output"), image)
    assert fixed[2].parts == (result("t1"), TextPart("[Tool error (x)]\nok"))


def test_answered_results_are_not_orphans() -> None:
    turns = (user("q"), assistant(use("t1")), user(result("t1")))
    assert orphan_results_to_text(turns) == (turns, False)


def test_drop_unanswered_tool_uses_removes_calls_without_results() -> None:
    turns = (
        user("q"),
        assistant("a", use("t1"), use("t2")),
        user(result("t1")),
        assistant(use("t3")),
        user("x"),
    )
    fixed, changed = drop_unanswered_tool_uses(turns)
    assert changed
    assert fixed[1].parts == (TextPart("a"), use("t1"))
    assert fixed[3].parts == ()


def test_strip_empty_input_keys_recursively() -> None:
    turns = (user("q"), assistant(ToolUsePart("t1", "f", {"": 1, "a": {"": 2, "b": [{"": 3, "c": 4}]}})))
    fixed, changed = strip_empty_input_keys(turns)
    assert changed
    part = fixed[1].parts[0]
    assert isinstance(part, ToolUsePart)
    assert part.input == {"a": {"b": [{"c": 4}]}}


def test_fill_empty_text_places_placeholders() -> None:
    turns = (
        user("", " "),
        assistant(use("t1")),
        user(result("t1", "  ")),
        assistant("\n"),
        user(ImagePart("image/png", PNG)),
    )
    fixed, changed = fill_empty_text(turns)
    assert changed
    assert fixed[0].parts == (TextPart(PLACEHOLDER),)
    assert fixed[1].parts == (use("t1"), TextPart(PLACEHOLDER))
    assert fixed[2].parts == (result("t1", EMPTY_RESULT), TextPart(TOOL_RESULTS_PLACEHOLDER))
    assert fixed[3].parts == (TextPart(PLACEHOLDER),)
    assert fixed[4].text() == PLACEHOLDER


def test_declare_history_tools_adds_placeholders_for_undeclared_names() -> None:
    turns = (user("q"), assistant(use("t1", "read"), use("t2", "Bash")), user(result("t1"), result("t2")))
    tools = (Tool("Read", "Reads", {"type": "object"}),)
    fixed, declared, changed = declare_history_tools(turns, tools)
    assert changed
    assert [t.name for t in declared] == ["Read", "Bash"]
    assert declared[1].description == HISTORY_TOOL_DESCRIPTION
    names = [p.name for p in fixed[1].parts if isinstance(p, ToolUsePart)]
    assert names == ["Read", "Bash"], "calls take the declared spelling"


def test_declare_history_tools_without_tool_content_changes_nothing() -> None:
    turns = (user("q"),)
    assert declare_history_tools(turns, ()) == (turns, (), False)


# --- the runner --------------------------------------------------------------------------------------


def test_repair_history_reports_and_logs_the_rules_applied(caplog: pytest.LogCaptureFixture) -> None:
    turns = (assistant("hi", use("t1", "Bash")), assistant("more"), user(result("t1", "")))
    with caplog.at_level(logging.DEBUG, logger="kiro_tray.protocol"):
        repaired = repair_history(turns)
    assert repaired.applied == (
        "merge_same_role",
        "ensure_user_first",
        "fill_empty_text",
        "declare_history_tools",
    )
    assert [t.role for t in repaired.turns] == ["user", "assistant", "user"]
    assert [t.name for t in repaired.tools] == ["Bash"]
    assert "history repair applied: merge_same_role" in caplog.text


def test_a_valid_conversation_needs_no_repair() -> None:
    turns = (user("q"), assistant("a", use("t1")), user(result("t1"), "and?"))
    repaired = repair_history(turns, (Tool("Read", "reads", {}),))
    assert repaired.applied == ()
    assert repaired.turns == turns


def test_interrupted_tool_call_is_removed_and_user_text_kept() -> None:
    turns = (user("q"), assistant("calling", use("t1")), user("[Request interrupted by user]"))
    repaired = repair_history(turns)
    assert "drop_unanswered_tool_uses" in repaired.applied
    assert repaired.turns[1].parts == (TextPart("calling"),)
    assert repaired.tools == ()


# --- properties --------------------------------------------------------------------------------------

IDS = st.sampled_from(["t1", "t2", "t3"])
TEXTS = st.sampled_from(["", " ", "hi", "{", "done"])
USER_PARTS = st.one_of(
    TEXTS.map(TextPart),
    st.just(ImagePart("image/png", PNG)),
    st.builds(ToolResultPart, IDS, TEXTS, st.just(()), st.booleans()),
)
ASSISTANT_PARTS = st.one_of(
    TEXTS.map(TextPart),
    TEXTS.map(ThinkingPart),
    st.builds(ToolUsePart, IDS, st.sampled_from(["Read", "read", "Bash"]), st.just({"": 1, "a": 2})),
)
TURNS = st.lists(
    st.one_of(
        st.lists(USER_PARTS, max_size=3).map(lambda ps: Turn("user", tuple(ps))),
        st.lists(ASSISTANT_PARTS, max_size=3).map(lambda ps: Turn("assistant", tuple(ps))),
    ),
    max_size=8,
).map(tuple)


@settings(max_examples=300, deadline=None)
@given(TURNS)
def test_repair_is_idempotent_and_leaves_a_well_formed_history(turns: tuple[Turn, ...]) -> None:
    repaired = repair_history(turns)
    assert repair_history(repaired.turns, repaired.tools).applied == ()
    roles = [t.role for t in repaired.turns]
    assert roles[0] == "user" and roles[-1] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles))
    for turn in repaired.turns:
        assert turn.text().strip()
        assert not any(isinstance(p, ThinkingPart) for p in turn.parts)
