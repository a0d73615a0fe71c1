"""One process of the concurrency test: run a role against a store, write what happened as JSON.

    python -m tests.concurrent_worker import URL CSV OUT
    python -m tests.concurrent_worker visits URL OFFICER N OUT
    python -m tests.concurrent_worker reads URL SECONDS OUT

Every role records when it started and ended (``time.time()``), so the test can
show that the processes overlapped, and every error message it saw.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from beatmap import store
from beatmap.errors import BeatmapError
from beatmap.ingest import import_activity
from beatmap.report import block_coverage, read_activity, window_from_store
from beatmap.settings import Settings
from beatmap.visits import log_visit

SETTINGS = Settings(timezone="America/Chicago")
#: A point on block A of the test city (see tests/conftest.py).
LAT, LON = 41.87596, -87.63631


def main(argv: list[str]) -> int:
    role, url, *rest = argv
    out = Path(rest[-1])
    started = time.time()
    result: dict[str, object] = {"role": role, "errors": []}
    engine = store.open_store(url, create=False)
    if role == "import":
        summary = import_activity(engine, rest[0], settings=SETTINGS, now=None, actor="test")
        result["summary"] = summary.to_dict()
        read_activity(engine, timezone=SETTINGS.timezone)  # the dashboard cache, as `beatmap import` warms it
    elif role == "visits":
        saved = 0
        for _ in range(int(rest[1])):
            try:
                log_visit(
                    engine,
                    officer_id=rest[0],
                    lat=LAT,
                    lon=LON,
                    kind="foot_patrol",
                    settings=SETTINGS,
                    client_token=uuid.uuid4().hex,
                    occurred_at=datetime(2026, 3, 15, 12, tzinfo=UTC),
                    now=datetime(2026, 3, 15, 13, tzinfo=UTC),
                )  # logged soon after (backdating is limited)
                saved += 1
            except BeatmapError as exc:
                result["errors"].append(str(exc))  # type: ignore[union-attr]
        result["saved"] = saved
    elif role == "reads":
        reads, until = 0, time.time() + float(rest[0])
        while time.time() < until:
            try:
                read_activity(engine, timezone=SETTINGS.timezone)
                block_coverage(engine, window=window_from_store(engine, settings=SETTINGS), settings=SETTINGS)
                reads += 1
            except BeatmapError as exc:
                result["errors"].append(str(exc))  # type: ignore[union-attr]
        result["reads"] = reads
    result.update(started=started, ended=time.time())
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
