"""`make bench`: build benchmark data on PostgreSQL, run the SPEC §11 workloads, print figures."""
