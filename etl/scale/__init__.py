"""Scale: the synthetic consortium generator and the benchmark behind `make bench`."""
