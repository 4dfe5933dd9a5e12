"""Velaria's SQL frontend.

Text layer: :mod:`.normalize` rewrites Velaria extensions (CREATE SOURCE/SINK ... USING ...
OPTIONS(...), WINDOW BY, KEYWORD SEARCH, HYBRID SEARCH, function renames, ``?`` placeholders,
DESCRIBE) into plain PostgreSQL text, :mod:`.parser` runs pglast on it and :mod:`.validate`
rejects SQL features that are not supported (with :mod:`.depth` bounding nesting).
:mod:`.run` dispatches one statement: :mod:`.params` binds parameters, :mod:`.planner` plans
SELECTs (WITH queries and derived tables inlined; :mod:`.shallow` keeps expressions shallow),
:mod:`.statements` and :mod:`.catalog_statements` run the other statements.
"""
