"""The batch executor: walks a plan tree over Arrow record batches."""
