"""Measurements that write docs/BENCHMARKS.md.

Each benchmark module has `run(args) -> dict` (saved to docs/benchmarks/<name>.json with the machine
and the command) and `markdown(result) -> str`; `python -m benchmarks report` assembles the page from
whatever results exist, so benchmarks can be rerun one at a time.
"""
