"""beatmap: measure non-enforcement police presence block by block.

The library reads beat and block polygons and activity exports, assigns each
activity to one block, stores everything in one SQL store and computes coverage
metrics and flags per block and beat.  It never imports streamlit; the dashboard
lives in ``beatmap.ui``.
"""

from beatmap.errors import BeatmapError, CRSError, InputError, StoreError

__all__ = ["BeatmapError", "CRSError", "InputError", "StoreError"]
__version__ = "0.1.0"
