"""The inference Gateway (HTTPRoute → InferencePool via the EPP, or → Service) and a kube-proxy baseline."""
