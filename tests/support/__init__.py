"""Helpers the tests share: real git repositories, dbt projects, DuckDB and PostgreSQL
databases, moto's S3 server, and the runs and reads tests make of them."""
