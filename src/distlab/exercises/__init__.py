"""Machinery the graded exercises' tests run on, one module per exercise slug.

serverless_pipeline   orders, a database whose commits fail, the faulty pipeline run
"""
