"""Complementary cell suppression that holds against the table's own arithmetic.

A table is a vector of non-negative interior cells `x` and a list of *items*: linear forms
`sum(x[i] for i in item.cells)` with a value. An item is an interior cell, a margin (row
total, n of a group, grand total), or an implicit cell that is never printed but follows
from printed numbers (n - count). Printed items are what a reader knows: equality
constraints on `x`.

An item is *sensitive* when its value is between 1 and min_cell - 1. The table is safe
when, for every hidden item (sensitive or hidden to protect one), the smallest and largest value it can take given the
printed items (a linear program: x >= 0, printed items fixed) lie at least `min_cell`
apart, so no subtraction, margin or combination of margins pins it down.

`protect` starts from hiding every sensitive printable item and then, while some sensitive
item is still pinned, hides one more printed cell (complementary suppression), chosen by
the classic hypercube idea: a cell in the most margins that hold a lone hidden cell
(smallest first), else a margin touching the item; it re-solves the linear program after
each step. Every item it hides is then checked the same way. Hiding only removes
constraints, so an item once safe stays safe, and the loop ends: at worst all is hidden.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog


@dataclass
class Item:
    cells: tuple[int, ...]
    printable: bool = True        # False: implicit (n - count), never printed
    hidden: bool = False
    locked: bool = False          # known to every reader (printed elsewhere): never hidden
    label: object = None


@dataclass
class LinearTable:
    values: np.ndarray                       # interior cells, true counts
    items: list[Item] = field(default_factory=list)

    def value(self, item: Item) -> float:
        return float(self.values[list(item.cells)].sum())

    def printed(self) -> list[Item]:
        return [it for it in self.items if it.printable and not it.hidden]


def feasible_range(n_cells: int, printed: list[tuple[tuple[int, ...], float]], target: tuple[int, ...]
                   ) -> tuple[float, float]:
    """[min, max] of sum(x[target]) over x >= 0 with every printed (cells, value) fixed."""
    c = np.zeros(n_cells)
    c[list(target)] = 1.0
    if printed:
        a = np.zeros((len(printed), n_cells))
        for r, (cells, _) in enumerate(printed):
            a[r, list(cells)] = 1.0
        b = np.array([v for _, v in printed], dtype=float)
    else:
        a = b = None
    lo = linprog(c, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
    hi = linprog(-c, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
    low = lo.fun if lo.status == 0 else 0.0
    high = float("inf") if hi.status == 3 else (-hi.fun if hi.status == 0 else float("inf"))
    return float(low), float(high)


def is_sensitive(value: float, min_cell: int) -> bool:
    return 0 < value < min_cell


def protect(table: LinearTable, min_cell: int) -> LinearTable:
    """Hide sensitive items and enough complementary ones that every hidden item's feasible
    range (sensitive or complementary) is at least `min_cell` wide. Mutates and returns `table`."""
    n = len(table.values)
    work = [it for it in table.items if is_sensitive(table.value(it), min_cell) and not it.locked]
    for it in work:
        _hide(table, it)
    done = 0
    while done < len(work):
        it = work[done]
        done += 1
        while True:
            printed = [(p.cells, table.value(p)) for p in table.printed()]
            lo, hi = feasible_range(n, printed, it.cells)
            if hi - lo >= min_cell:
                break
            pick = _next_to_hide(table, it)
            if pick is None:
                break  # nothing printed constrains it any more
            work += _hide(table, pick)
    return table


def _hide(table: LinearTable, item: Item) -> list[Item]:
    """Hide `item` and every item that is the same sum (a margin over a one-level dimension)."""
    same = [it for it in table.items if it.cells == item.cells and not it.hidden and not it.locked]
    for it in same:
        it.hidden = True
    return [it for it in same if it.printable]


def _next_to_hide(table: LinearTable, it: Item) -> Item | None:
    """The printed cell that best frees a pinned item: one lying in the most printed margins
    that hold exactly one hidden cell (such a margin pins that cell by subtraction), smallest
    value first; else a margin touching the item, or one tied to it through a printed total."""
    hidden_cells = {i.cells[0] for i in table.items if len(i.cells) == 1 and (i.hidden or not i.printable)}
    printed = table.printed()
    margins = [set(p.cells) for p in printed if len(p.cells) > 1]
    lone = [m for m in margins if len(m & hidden_cells) == 1]
    best, best_key = None, None
    for p in printed:
        if len(p.cells) != 1 or p.locked:
            continue
        score = sum(p.cells[0] in m for m in lone)
        if score == 0:
            continue
        v = table.value(p)
        key = (-score, v == 0, v)
        if best_key is None or key < best_key:
            best, best_key = p, key
    if best is not None:
        return best
    cells = set(it.cells)
    touching = [p for p in printed if cells & set(p.cells) and not p.locked]
    if not touching:  # e.g. the other group's n, tied to this one through the grand total
        reach = cells.union(*(set(p.cells) for p in printed if cells & set(p.cells)))
        touching = [p for p in printed if reach & set(p.cells) and not p.locked]
    return min(touching, key=lambda p: (len(p.cells), table.value(p))) if touching else None
