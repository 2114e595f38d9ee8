"""The Pet Claims graph: ontology, connection, embedded server, schema and counts."""
