"""Activities: all of dunflow's I/O (rendering, sending, writing to the store). Each is idempotent."""
