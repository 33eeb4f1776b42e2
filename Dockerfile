# The Airflow image for docker-compose.yaml: the official image plus the project's pinned runtime deps.
# Build: docker compose build   (the FROM tag must equal the apache-airflow pin in requirements.txt)
FROM apache/airflow:3.3.2 AS airflow
COPY requirements.txt /opt/dynamoguard/requirements.txt
# Re-pinning apache-airflow keeps pip from upgrading or downgrading Airflow itself.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/dynamoguard/requirements.txt

# The local AWS emulator (moto's server + the project's fidelity fixes); not needed against real AWS.
FROM airflow AS localaws
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "moto[server]==5.2.5"
