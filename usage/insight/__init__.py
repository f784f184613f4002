"""Insight built on the what-if replay (``usage.replay``): the right quantity of an item."""
