"""Ingestion: raw CSV/CSV.gz/JSON Lines/Parquet files -> bronze Delta tables + rejects."""
