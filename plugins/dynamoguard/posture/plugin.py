"""Registers the posture page with Airflow: the FastAPI app at ``/dynamoguard`` and its entry in the navigation."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from dynamoguard.posture.app import create_app


class DynamoguardPosturePlugin(AirflowPlugin):
    name = "dynamoguard_posture"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/dynamoguard", "name": "dynamoguard backup posture"}]
    external_views = [{"name": "Backup posture", "href": "dynamoguard/", "destination": "nav",
                       "url_route": "backup-posture", "category": "browse"}]
