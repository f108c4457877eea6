"""Plugins that ship with softmax-bench but plug in as a third party's would: through entry
points only (nothing in ``harness`` names them)."""
