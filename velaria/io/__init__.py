"""Sources of batch data: in-memory Arrow, and (see ``velaria.io.api``) files."""
