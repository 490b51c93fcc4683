"""Side-by-side benchmarks for distlab (run with `make bench`; not part of `make test`)."""
