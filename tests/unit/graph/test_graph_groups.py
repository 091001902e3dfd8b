"""When the graph ingest writes a group: at its row budget, or at half of it when the
writer has just waited for the parse workers (a parse-bound, cold-cache ingest)."""

from __future__ import annotations

from headrace.graph.ingest import GROUP_ROWS, group_full


def test_a_writer_bound_group_fills_its_row_budget() -> None:
    assert not group_full(GROUP_ROWS - 1, GROUP_ROWS, parse_bound=False)
    assert group_full(GROUP_ROWS, GROUP_ROWS, parse_bound=False)


def test_a_parse_bound_group_is_written_at_half_its_budget() -> None:
    assert not group_full(GROUP_ROWS // 2 - 1, GROUP_ROWS, parse_bound=True)
    assert group_full(GROUP_ROWS // 2, GROUP_ROWS, parse_bound=True)
    assert group_full(3, 4, parse_bound=True)
    assert not group_full(1, 4, parse_bound=True)
