-- Runs once, when the PostgreSQL volume is new: dunflow's own database beside Temporal's.
CREATE DATABASE dunflow;
