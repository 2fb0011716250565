"""Value types of the report: a missing input and a rendered section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Unavailable:
    """An input the report could not get, with the reason shown to the reader."""

    reason: str

    def __bool__(self) -> bool:  # `if inputs.x:` reads as "is it there"
        return False


def missing(value: Any) -> bool:
    """Whether ``value`` is absent: :class:`Unavailable`, None or an empty frame / dict."""
    if value is None or isinstance(value, Unavailable):
        return True
    if hasattr(value, "empty"):
        return bool(value.empty)
    if isinstance(value, dict):
        return not value
    return False


def reason_of(value: Any, what: str) -> str:
    """The reason to print for a missing ``value`` (``what`` names it when there is none)."""
    if isinstance(value, Unavailable):
        return value.reason
    if value is None:
        return f"{what} was not collected"
    return f"{what} is empty"


@dataclass
class Section:
    """One section of the report.

    Attributes:
        key: Anchor id (``quality``, ``forecast``, ...).
        title: Heading (``<h2>``).
        blocks: HTML fragments, in order (already escaped where they hold data).
        unavailable: Reasons of the parts that could not be shown (also in ``blocks``).
    """

    key: str
    title: str
    blocks: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    def add(self, html: str) -> "Section":
        self.blocks.append(html)
        return self

    def na(self, reason: str, what: str | None = None) -> "Section":
        """Add a visible ``not available: <reason>`` note."""
        from marketlab.report.html import na

        self.unavailable.append(reason)
        self.blocks.append(na(reason, what))
        return self
