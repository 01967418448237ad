"""The local lab's Kubernetes API server: a stateless discovery scaffold over a stateful store.

``store.Store`` is the in-process API (controllers call it directly); ``app.create_app`` serves it over
HTTP so that the official ``kubernetes`` client and ``kubectl`` work unmodified.
"""
