"""The Parquet dataset: table schemas, the ledger, and the atomic commit protocol."""
