"""KServe's LLMInferenceService controller (red-hat-data-services/kserve @ rhoai-3.0, pkg/controller/llmisvc).

``presets`` merges the well-known LLMInferenceServiceConfigs, ``baseRefs`` and the spec; ``children`` renders
the objects KServe creates, with its names, labels and ownerReferences; ``status`` aggregates conditions.
"""
