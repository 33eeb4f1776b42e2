"""Local AWS emulator: moto's server, a few documented fidelity fixes, and a demo-estate seed.

moto is a stand-in for AWS, not the specification. Where moto 5.2.5 deviates from AWS's
documented behaviour in a way our code would see, a small module in ``fixes/`` patches moto
inside the emulator process only; production code never special-cases moto.
"""

SOURCE_ACCOUNT = "111111111111"
BACKUP_ACCOUNT = "222222222222"
DEFAULT_PORT = 4577
ACCESS_KEY = "localaws-access-key"
SECRET_KEY = "localaws-secret-key"
REGION = "us-east-1"
