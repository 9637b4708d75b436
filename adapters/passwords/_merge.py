"""Merging two versions of one entry so that neither edit is lost silently."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

from ._entry import _TEXT_FIELDS, MAX_LINEAGE, Entry, HistoryItem

__all__ = ["merge"]


def _conflict_values(e: Entry) -> dict[str, str]:
    """Every content field as text, so a losing value can be kept in history."""
    values = {name: getattr(e, name) for name in _TEXT_FIELDS}
    values["otpauth"] = e.otpauth or ""
    values["other_urls"] = json.dumps(list(e.other_urls), ensure_ascii=False)
    values["fields"] = json.dumps([list(p) for p in e.fields], ensure_ascii=False)
    values["type"] = e.type
    values["details"] = json.dumps([list(p) for p in e.details], ensure_ascii=False)
    values["passkeys"] = json.dumps([[list(p) for p in pk] for pk in e.passkeys])
    return values


def _union(*histories: Iterable[HistoryItem]) -> tuple[HistoryItem, ...]:
    seen = {h._key(): h for hist in histories for h in hist}
    return tuple(seen[k] for k in sorted(seen))


def merge(local: Entry, remote: Entry) -> Entry:
    """Reconcile two versions of one entry so that neither edit is lost silently.

    A descendant wins outright. Concurrent edits: the later ``updated`` wins
    (ties broken by revision, so ``merge(a, b) == merge(b, a)``), every field
    where the earlier version differs goes into history marked as a conflict,
    and the result is flagged ``had_conflict``.
    """
    if local.id != remote.id:
        raise ValueError("merge needs two versions of the same entry")
    if local.revision == remote.revision:
        return local
    if remote.revision in local.lineage:
        return local
    if local.revision in remote.lineage:
        return remote
    winner, loser = sorted((local, remote), key=lambda e: (e.updated, e.revision), reverse=True)
    won, lost = _conflict_values(winner), _conflict_values(loser)
    losses = [HistoryItem(f, lost[f], winner.updated, True) for f in lost if lost[f] != won[f]]
    extra = dict(loser.extra) | dict(winner.extra)
    lineage: list[str] = []
    for rev in (winner.revision, loser.revision, *winner.lineage, *loser.lineage):
        if rev not in lineage:
            lineage.append(rev)
    return dataclasses.replace(
        winner,
        created=min(winner.created, loser.created),
        extra=tuple(sorted(extra.items())),
        history=_union(winner.history, loser.history, losses),
        had_conflict=bool(losses) or winner.had_conflict or loser.had_conflict,
        lineage=tuple(lineage[:MAX_LINEAGE]),
    )
