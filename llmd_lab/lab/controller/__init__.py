"""The lab's controllers: KServe's LLMInferenceService reconciler and the Kubernetes workload controllers.

Pure rendering (what children an LLMInferenceService has, what its status says) lives in ``llmisvc``;
the reconcile loops that watch the store and apply it live in ``manager`` and one module per controller.
"""
