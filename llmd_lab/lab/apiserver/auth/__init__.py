"""Authentication and authorization for the lab's API server, as kube-apiserver does them.

Bearer tokens become a :class:`~.user.UserInfo` (``authentication``); each request becomes
:class:`~.attributes.Attributes` that the RBAC authorizer (``rbac``) allows or denies, with 403 bodies in
kube-apiserver's wording (``forbidden``). RBAC data starts from the bootstrap policy (``bootstrap``).
"""
