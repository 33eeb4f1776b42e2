"""The backup posture page: every protected table's state at a glance, in the Airflow UI and as JSON.

``aggregate`` reads the findings store (known keys, concurrently) and builds one posture document;
``render`` turns it into HTML with server-side SVG charts; ``app`` is the FastAPI app Airflow mounts at
``/dynamoguard``; ``plugin`` registers it and its entry in the navigation.
"""
