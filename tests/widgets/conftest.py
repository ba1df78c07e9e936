"""Fixtures of the widget tests: small real atlases (toy model, synthetic multi-model)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atlas_fixtures import gpt2_like_atlas, multi_atlas, toy_circuits_atlas, toy_view_atlas  # noqa: E402,F401
