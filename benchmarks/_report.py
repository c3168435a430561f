"""Results, goals and the printed table, shared by every benchmark module."""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Goal", "Row", "Section", "fmt_bytes", "fmt_ns", "render"]

_OPS = {"<=": operator.le, ">=": operator.ge}


@dataclass
class Goal:
    """A promise checked against a measured value: ``value <op> target``."""

    name: str
    value: float
    op: str
    target: float
    unit: str = ""

    @property
    def passed(self) -> bool:
        return not math.isnan(self.value) and _OPS[self.op](self.value, self.target)

    def describe(self) -> str:
        return f"{_fmt(self.value, self.unit)} {self.op} {_fmt(self.target, self.unit)}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass
class Row:
    """One printed line: a name, the measured columns, and a free-text note."""

    name: str
    cells: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Section:
    title: str
    headers: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # everything, for latest.json

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "results": self.data,
            "goals": [g.to_json() for g in self.goals],
            "notes": self.notes,
        }


def fmt_ns(ns: float) -> str:
    if ns is None or math.isnan(ns):
        return "-"
    if abs(ns) >= 1_000_000:
        return f"{ns / 1e6:.2f} ms"
    if abs(ns) >= 10_000:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def fmt_bytes(n: float) -> str:
    if n is None or math.isnan(n):
        return "-"
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n >= 1e6:
        return f"{sign}{n / 1e6:.2f} MB"
    if n >= 1e3:
        return f"{sign}{n / 1e3:.1f} kB"
    return f"{sign}{n:.0f} B"


def _fmt(value: float, unit: str) -> str:
    if unit == "ns":
        return fmt_ns(value)
    if unit == "B":
        return fmt_bytes(value)
    if unit == "x":
        return f"{value:.1f}×"
    return f"{value:g}{unit}"


def render(sections: list[Section], header: str) -> str:
    lines = [header, ""]
    for section in sections:
        name_w = max([len(r.name) for r in section.rows] + [len(section.title), 10])
        width = len(section.headers)
        for row in section.rows:
            row.cells = tuple(row.cells) + ("",) * (width - len(row.cells))
        col_w = [max([len(r.cells[i]) for r in section.rows] + [len(section.headers[i]), 8]) for i in range(width)]
        lines.append(section.title)
        head = f"  {'':<{name_w}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(section.headers, col_w, strict=True))
        lines.append(head.rstrip())
        lines.append("  " + "-" * (name_w + sum(col_w) + 2 * width + 24))
        for row in section.rows:
            cells = "  ".join(f"{c:>{w}}" for c, w in zip(row.cells, col_w, strict=True))
            lines.append(f"  {row.name:<{name_w}}  {cells}  {row.note}".rstrip())
        for goal in section.goals:
            mark = "PASS" if goal.passed else "FAIL"
            lines.append(f"  [{mark}] {goal.name}: {goal.describe()}")
        for note in section.notes:
            lines.append(f"  note: {note}")
        lines.append("")
    return "\n".join(lines)
