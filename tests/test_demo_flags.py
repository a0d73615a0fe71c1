"""The demo city end to end: `beatmap demo`, then coverage flags recover the planted neglected blocks."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

from beatmap import snapshot
from beatmap.cli import main
from beatmap.settings import Settings
from tests.conftest import store_db

# The default demo (eight weeks of GPS), and another seed with one week of GPS to stay quick.
SEEDS = [(7, []), (11, ["--gps-weeks", "1"])]


@pytest.mark.parametrize(("seed", "gps"), SEEDS)
def test_flags_recover_planted_neglect(tmp_path, capsys, seed, gps, monkeypatch):
    monkeypatch.setenv("BEATMAP_PUBLIC_DIR", str(tmp_path / "public"))
    db, out = store_db(tmp_path / "demo.db"), tmp_path / "demo"
    assert main(["--db", db, "demo", "--seed", str(seed), "--dir", str(out), *gps]) == 0
    # The demo publishes its first public snapshot: the public page has a map on first run.
    assert "public map published to" in capsys.readouterr().out
    assert snapshot.check_snapshot(tmp_path / "public", settings=Settings()) == []
    assert len(snapshot.read_features(tmp_path / "public")["features"]) == len(gpd.read_file(out / "blocks.geojson"))
    assert main(["--db", db, "coverage", "--out", str(tmp_path / "coverage.csv")]) == 0
    capsys.readouterr()
    coverage = pd.read_csv(tmp_path / "coverage.csv", dtype={"block_id": str})
    truth = pd.read_csv(out / "ground_truth.csv", dtype={"block_id": str})

    flagged = set(coverage.loc[coverage["flag"].notna(), "block_id"])
    planted = set(truth["block_id"])
    hits = flagged & planted
    precision, recall = len(hits) / len(flagged), len(hits) / len(planted)
    same_kind = pd.merge(truth, coverage, on="block_id")
    kind_agreement = (same_kind["planted"] == same_kind["flag"]).mean()
    with capsys.disabled():
        print(
            f"\ndemo seed {seed}: {len(coverage)} blocks, {len(planted)} planted, {len(flagged)} flagged; "
            f"precision {precision:.3f}, recall {recall:.3f}, same flag as planted {kind_agreement:.3f}"
        )
    assert precision >= 0.9 and recall >= 0.9
    assert kind_agreement >= 0.9
