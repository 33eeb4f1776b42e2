"""Access review: who can read, change or destroy the protected tables and their backups.

``collect`` reads an account's IAM state and resource policies, ``evaluate`` answers "is this action
on this resource allowed" from policy documents alone, ``resources`` builds the who-can-do-what
matrix for the protected estate, ``findings`` turns it into findings and ``report`` writes JSON/HTML
and the diff against the previous run.
"""
