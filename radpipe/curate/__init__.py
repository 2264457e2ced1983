"""Curation: patient-level splits, exact and near duplicates, and the prune flag training honours."""
