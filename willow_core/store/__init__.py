"""PostgreSQL storage: the population, and the runs and batches that steer its generation."""
