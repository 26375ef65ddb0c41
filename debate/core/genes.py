"""Gene symbols: validation, case-insensitive matching, and target labels.

Symbols keep their HGNC casing (``C9orf72``, ``HSP90AA1``, ``HLA-DRB1``) for display and are
compared case-insensitively through :func:`gene_key`.
"""

from __future__ import annotations

import re

from debate.core.errors import UserInputError

GENE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$")
_HAS_LETTER = re.compile(r"[A-Za-z]")
# Labels in the wild join genes with ", " or " and " ("P2RY1 and P2RX7", "SNCA, LAG3").
_LABEL_SPLIT = re.compile(r",\s*|\s+and\s+")


def is_gene_symbol(symbol: str) -> bool:
    """True when ``symbol`` has the shape of a gene symbol (HGNC-like, with a letter)."""
    return bool(GENE_RE.match(symbol)) and bool(_HAS_LETTER.search(symbol))


def validate_gene(symbol: str, *, where: str | None = None) -> str:
    """Return ``symbol`` stripped, or raise :class:`UserInputError` naming it."""
    s = symbol.strip()
    if not is_gene_symbol(s):
        raise UserInputError(
            f"invalid gene symbol {symbol!r} (expected letters, digits and '-', at most 20 characters)",
            where=where,
        )
    return s


def gene_key(symbol: str) -> str:
    """The case-insensitive key a symbol is matched by."""
    return symbol.strip().upper()


def split_target_label(label: str) -> list[str]:
    """Split a target label into gene symbols: ``"P2RY1 and P2RX7"`` -> ``["P2RY1", "P2RX7"]``.

    Parts that are not gene-shaped are dropped (a label is display text and may hold words);
    duplicates (case-insensitively) are kept once, first spelling wins.
    """
    genes: list[str] = []
    seen: set[str] = set()
    for part in _LABEL_SPLIT.split(label.strip()):
        part = part.strip()
        if part and is_gene_symbol(part) and gene_key(part) not in seen:
            seen.add(gene_key(part))
            genes.append(part)
    return genes


def join_target_label(genes: list[str]) -> str:
    """The label the wiki shows for computed targets: ``X``, ``X and Y``, ``X, Y, Z``."""
    if len(genes) <= 1:
        return "".join(genes)
    if len(genes) == 2:
        return f"{genes[0]} and {genes[1]}"
    return ", ".join(genes)
