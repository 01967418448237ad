"""One KServe vocabulary for the library, the lab and the simulators.

What KServe ``rhoai-3.0`` (red-hat-data-services/kserve) names, labels and injects for an
``LLMInferenceService`` is written here once: the lab's controller renders from it, the library's
``doctor``/``manifests`` predict from it, the simulated EPP loads the same config text. A test checks the
lab renders exactly what this package predicts (tests/lab/controller/test_kserve_vocabulary.py).

Modules: ``names`` (child names), ``labels`` (labels and selectors), ``epp`` (the EPP config and Service
ports KServe renders). It imports nothing from ``llmd_lab.lab``, ``llmd_lab.sim`` or ``llmd_lab.bench`` (import-linter contract).
"""
