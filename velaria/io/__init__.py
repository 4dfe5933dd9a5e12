"""Sources of batch data and file output: in-memory Arrow (``base``), text files (csv, line,
json), Parquet and Arrow IPC, Excel, and the writers.

Entry points: ``readers_api.ReaderMethods`` (the Session's readers), ``ddl.create_table_source``
(CREATE TABLE over files), ``probe.probe_file``, ``writers.write_table`` (``DataFrame.write_*``
and ``COPY ... TO``) and ``velaria.excel.read_excel``.
"""
