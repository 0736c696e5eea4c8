"""Counted nouns and articles for messages: "1 state", "2 states", "an int"."""

from __future__ import annotations


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``"1 state"``, ``"3 states"`` (``many`` for irregular plurals).

    Example:
        >>> plural(1, "character"), plural(2, "edge")
        ('1 character', '2 edges')
    """
    return f"{n} {noun if n == 1 else (many or noun + 's')}"


def a(word: str) -> str:
    """``word`` after its indefinite article: ``"an int"``, ``"a list"``.

    Example:
        >>> a("int"), a("str")
        ('an int', 'a str')
    """
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
