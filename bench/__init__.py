"""Benchmarks: figures printed, never asserted (the latest ones are in bench/README.md)."""
