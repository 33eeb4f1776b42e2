"""Unknown access keys belong to the source account.

AWS resolves every request's credentials to the account that owns them. The emulator has two
accounts: requests signed with its static keys act in the source account (111111111111), and
credentials returned by STS AssumeRole act in the role's account (moto tracks those itself).
moto would put unknown keys into its own default account, 123456789012.
"""

from moto.iam import models as iam_models

from include.localaws import SOURCE_ACCOUNT

_original = iam_models.get_account_id_from


def _account_of(access_key: str) -> str:
    account = _original(access_key)
    return SOURCE_ACCOUNT if account == iam_models.DEFAULT_ACCOUNT_ID else account


def apply() -> None:
    iam_models.get_account_id_from = _account_of
