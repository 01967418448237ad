"""kube-scheduler for the lab: the fit/score plugins (``fit``), Kueue quota admission (``kueue``) and the
component that binds pods (``scheduler``)."""
