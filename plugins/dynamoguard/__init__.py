"""dynamoguard: Airflow pipelines that keep DynamoDB data and its backups safe."""
