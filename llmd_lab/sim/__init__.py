"""Simulators: vLLM replicas (``sim.vllm``), the llm-d endpoint picker (``sim.epp``) and the gateway
(``sim.gateway``). They never import the lab (``llmd_lab.lab``): the lab hands them a
:class:`~llmd_lab.sim.source.ResourceSource`, so they also run in-process in tests and benchmarks."""
