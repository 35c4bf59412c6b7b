"""Who hands out which ids (docs/rules.md, "Ids").

Ids below PLAY_IDS come from joins (the world header's next_id keeps them
unique). Ids from PLAY_IDS up are created during play, each zone from its
own range of ZONE_IDS, so zones never ask each other for one. ID_LIMIT,
2^63 - 1, PostgreSQL's largest bigint, is never handed out: it cuts the
last zone's range (zone 2^32 - 1) one short.
"""

from __future__ import annotations

PLAY_IDS = 2**62          # ids from here up belong to what play creates
ZONE_IDS = 2**30          # the ids each zone may create
ID_LIMIT = 2**63 - 1      # PostgreSQL's largest bigint: no id reaches it


def zone_first_id(zone: int) -> int:
    """The first id zone `zone` creates: its next_id in a world that has created nothing there."""
    return PLAY_IDS + zone * ZONE_IDS


def zone_id_end(zone: int) -> int:
    """Where zone `zone`'s range ends: with next_id there it creates nothing more."""
    return min(PLAY_IDS + (zone + 1) * ZONE_IDS, ID_LIMIT)
