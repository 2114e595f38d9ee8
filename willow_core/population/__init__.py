"""The synthetic population: its records, the batch generator and the generator worker."""
