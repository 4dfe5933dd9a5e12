"""Logical plan, expression IR, physical plan and explain rendering."""
