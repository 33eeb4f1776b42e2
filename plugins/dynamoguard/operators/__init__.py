"""Airflow operators: thin glue from the config and connections to the logic modules."""
