"""Velaria's SQL frontend.

Text layer: :mod:`.normalize` rewrites Velaria extensions (CREATE SOURCE/SINK ... USING ...
OPTIONS(...), WINDOW BY, KEYWORD SEARCH, HYBRID SEARCH, function renames) into plain
PostgreSQL text, :mod:`.parser` runs pglast on it and :mod:`.validate` rejects SQL features
that Velaria SQL v1 does not support. Lowering and planning live in the sibling modules.
"""
