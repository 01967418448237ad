"""Who is asking: the naming rules kube-apiserver applies to users and service accounts.

``UserInfo`` itself is the API server's (access.py). Names follow ``k8s.io/apiserver/pkg/authentication/user`` and ``.../serviceaccount`` so RBAC subjects written
for a cluster (``system:serviceaccount:<ns>:<name>``, group ``system:serviceaccounts:<ns>``) match in the lab.
"""

from __future__ import annotations

from llmd_lab.lab.apiserver.access import UserInfo

__all__ = ["UserInfo", "master_user", "oauth_user", "service_account_user", "service_account_username"]

SYSTEM_MASTERS = "system:masters"
ALL_AUTHENTICATED = "system:authenticated"
# OpenShift adds this group to every user who logged in through its OAuth server (oc login); the
# self-provisioners binding names it, so service accounts cannot request projects.
OAUTH_AUTHENTICATED = "system:authenticated:oauth"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"


def service_account_username(namespace: str, name: str) -> str:
    """``system:serviceaccount:<ns>:<name>`` (serviceaccount.MakeUsername)."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    """A service account's identity with the groups the token authenticator gives it."""
    return UserInfo(service_account_username(namespace, name),
                    (ALL_SERVICE_ACCOUNTS, f"{ALL_SERVICE_ACCOUNTS}:{namespace}", ALL_AUTHENTICATED), uid)


def oauth_user(name: str) -> UserInfo:
    """A person who logged in through OpenShift's OAuth server (``oc login``)."""
    return UserInfo(name, (OAUTH_AUTHENTICATED, ALL_AUTHENTICATED))


def master_user(name: str) -> UserInfo:
    """An identity in ``system:masters`` (what the lab's components and the instructor use)."""
    return UserInfo(name, (SYSTEM_MASTERS, ALL_AUTHENTICATED))
