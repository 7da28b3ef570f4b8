"""Identifiers: time-ordered, unique, one shape whichever way they are made."""

from __future__ import annotations

import re

from hookd.ids import id_maker, new_id

SHAPE = re.compile(r"^dlv_[0-9a-f]{30}$")


def test_ids_made_in_one_go_look_like_single_ones_and_are_unique() -> None:
    """id_maker's ids have new_id's shape, distinct random parts, and the same clock prefix."""
    make = id_maker("dlv")
    made = [make() for _ in range(10_000)]
    assert all(SHAPE.match(i) for i in made)
    assert SHAPE.match(new_id("dlv"))
    assert len(set(made)) == len(made)
    assert len({i[:16] for i in made}) == 1  # prefix and milliseconds, read once
    assert new_id("dlv")[:16] >= made[0][:16]  # later ids sort after
