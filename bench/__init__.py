"""Kootabase benchmarks: reproducible benchmarks, workload generators, result tables and
plots.

Lives at the repository root and is not installed; the product never imports it.
"""
