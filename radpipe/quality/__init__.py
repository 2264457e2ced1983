"""Data quality: expectation suites as data, dataset-wide checks, and the Great Expectations adapter."""
