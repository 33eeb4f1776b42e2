"""GetAccountAuthorizationDetails as AWS returns it, and permissions boundaries for IAM users.

AWS (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountAuthorizationDetails.html):
the response is paginated - ``MaxItems`` (1-1000, default 100) bounds the number of items in a
response, ``IsTruncated`` says more are available and ``Marker`` resumes. Each ``ManagedPolicyDetail``
(API_ManagedPolicyDetail.html) carries ``PolicyName``, ``PolicyId`` and ``PermissionsBoundaryUsageCount``;
each ``UserDetail`` (API_UserDetail.html) carries the user's ``PermissionsBoundary``.
Users can have a permissions boundary: CreateUser takes ``PermissionsBoundary``, and
PutUserPermissionsBoundary / DeleteUserPermissionsBoundary set and remove it
(https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html); GetUser returns it,
ListUsers does not (API_ListUsers.html).

moto 5.2.5 ignores ``MaxItems``/``Marker`` (everything in one response, ``IsTruncated`` false), leaves
``PolicyName``/``PolicyId``/``PermissionsBoundaryUsageCount`` out of ``Policies``, ignores a user's
``PermissionsBoundary`` on CreateUser and answers PutUserPermissionsBoundary with a 500.
"""

from __future__ import annotations

from moto.core.responses import ActionResult, EmptyResult
from moto.core.serialize import never_return, return_if_not_empty
from moto.iam import models
from moto.iam.exceptions import ValidationError
from moto.iam.responses import IamResponse

DEFAULT_MAX_ITEMS = 100
LISTS = ("users", "UserDetailList"), ("groups", "GroupDetailList"), ("roles", "RoleDetailList"), \
    ("managed_policies", "Policies")


def _boundary_usage(policy: models.ManagedPolicy) -> int:
    backend = policy.backend
    holders = [*backend.roles.values(), *backend.users.values()]
    return sum(1 for h in holders if getattr(h, "permissions_boundary_arn", None) == policy.arn)


def _user_boundary(user: models.User) -> dict[str, str] | None:
    arn = getattr(user, "permissions_boundary_arn", None)
    return {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": arn} if arn else None


def get_account_authorization_details(self: IamResponse) -> ActionResult:
    details = self.backend.get_account_authorization_details(self._get_param("Filter", []))
    max_items = int(self._get_param("MaxItems") or DEFAULT_MAX_ITEMS)
    marker = self._get_param("Marker")
    if not 1 <= max_items <= 1000:
        raise ValidationError("1 validation error detected: Value at 'maxItems' failed to satisfy constraint")
    if marker is not None and not str(marker).isdigit():
        raise ValidationError("Invalid Marker")
    start = int(marker or 0)
    items = [(key, item) for source, key in LISTS for item in details[source]]
    page = items[start:start + max_items]
    result = {key: [item for k, item in page if k == key] for _, key in LISTS}
    result["IsTruncated"] = start + max_items < len(items)
    if result["IsTruncated"]:
        result["Marker"] = str(start + max_items)
    return ActionResult(result)


def _set_user_boundary(self: IamResponse, arn: str | None) -> None:
    user = self.backend.get_user(self._get_param("UserName"))
    if arn and not self.backend.policy_arn_regex.match(arn):
        raise ValidationError(f"Value ({arn}) for parameter PermissionsBoundary is invalid.")
    user.permissions_boundary_arn = arn


def _create_user(original):
    def create_user(self: IamResponse) -> ActionResult:
        result = original(self)
        if self._get_param("PermissionsBoundary"):
            _set_user_boundary(self, self._get_param("PermissionsBoundary"))
        return result
    return create_user


def put_user_permissions_boundary(self: IamResponse) -> EmptyResult:
    _set_user_boundary(self, self._get_param("PermissionsBoundary"))
    return EmptyResult()


def delete_user_permissions_boundary(self: IamResponse) -> EmptyResult:
    _set_user_boundary(self, None)
    return EmptyResult()


def apply() -> None:
    models.ManagedPolicy.policy_name = property(lambda self: self.name)
    models.ManagedPolicy.policy_id = property(lambda self: self.id)
    models.ManagedPolicy.permissions_boundary_usage_count = property(_boundary_usage)
    models.User.permissions_boundary = property(_user_boundary)
    IamResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER.update({
        "CreateUserResponse.User.PermissionsBoundary": return_if_not_empty,
        "GetUserResponse.User.PermissionsBoundary": return_if_not_empty,
        "ListUsersResponse.Users.User.PermissionsBoundary": never_return,
    })
    IamResponse.get_account_authorization_details = get_account_authorization_details
    IamResponse.create_user = _create_user(IamResponse.create_user)
    IamResponse.put_user_permissions_boundary = put_user_permissions_boundary
    IamResponse.delete_user_permissions_boundary = delete_user_permissions_boundary
