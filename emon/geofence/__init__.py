"""Zone and proximity evaluation: a pure core, no I/O, time passed in."""
