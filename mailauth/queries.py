"""Store reads verification needs (run through `asyncdb.call`)."""

from __future__ import annotations

from collections.abc import Sequence

from mailboxes.models import Domain


def local_domains(names: Sequence[str]) -> list[str]:
    """Those of `names` that are our domains, active or not (a disabled domain of ours is still ours)."""
    if not names:
        return []
    found = set(Domain.objects.filter(name__in=list(names)).values_list("name", flat=True))
    return [name for name in names if name in found]
