"""Sources of batch data: in-memory Arrow (``base``) and files (csv, line, json, excel).

Entry points: ``readers_api.ReaderMethods`` (the Session's readers), ``ddl.create_table_source``
(CREATE TABLE over files), ``probe.probe_file`` and ``velaria.excel.read_excel``.
"""
