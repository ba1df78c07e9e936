"""Notebook views over an Atlas (anywidget): PatternGrid, PatternCloud, SimilarHeads and the
HeadExplorer that links them through one selection state.

Each view is a thin AnyWidget: its traits hold the atlas's own results packed as binary
buffers (``_packing``), its ES module is a prebuilt bundle in ``motif_widgets/static`` (sources
in ``js/``). ``save_html`` writes an offline page with the same interactions.
"""

from .base import AtlasWidget, link_selection
from .cloud import PatternCloud
from .explorer import HeadExplorer
from .grid import PatternGrid
from .similar import SimilarHeads

__all__ = ["AtlasWidget", "HeadExplorer", "PatternCloud", "PatternGrid", "SimilarHeads", "link_selection"]
