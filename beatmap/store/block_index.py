"""The saved block index: bytes of :mod:`beatmap.index`, one row per areas identity.

The store keeps the bytes only; building, reading them back and the
in-memory cache are :mod:`beatmap.index`'s.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from beatmap.store.bind import Bind, connection
from beatmap.store.tables import block_index_table


def write_block_index(
    conn: Connection, areas_key: str, data: bytes, *, fmt: str, edge_tolerance_m: float, snap_m: float
) -> None:
    """Keep ``data`` as the block index of the areas ``areas_key``, replacing any index kept before."""
    conn.execute(delete(block_index_table))
    conn.execute(
        insert(block_index_table).values(
            areas_key=areas_key, format=fmt, edge_tolerance_m=edge_tolerance_m, snap_m=snap_m, data=data
        )
    )


def read_block_index(bind: Bind, areas_key: str, *, fmt: str, edge_tolerance_m: float, snap_m: float) -> bytes | None:
    """The kept index of the areas ``areas_key`` in format ``fmt`` for these distances, or None."""
    t = block_index_table
    query = select(t.c.data).where(
        t.c.areas_key == areas_key, t.c.format == fmt, t.c.edge_tolerance_m == edge_tolerance_m, t.c.snap_m == snap_m
    )
    with connection(bind) as conn:
        data = conn.execute(query).scalar_one_or_none()
    return None if data is None else bytes(data)
