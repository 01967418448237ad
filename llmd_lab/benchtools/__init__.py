"""The field's own benchmark tools (GuideLLM) driven from the kit, reporting in the kit's DataFrames and charts.

Works the same against a cluster (``status.url`` or a Service URL, the model's own tokenizer) and the lab
(the lab's shared tokenizer directory, :data:`llmd_lab.tokenizer.TOKENIZER_DIR`, so nothing downloads). The
tool itself is the optional extra ``pip install 'llmd_lab[bench]'``.
"""

from llmd_lab.benchtools.guidellm import (
    SCENARIOS,
    GuideLLMError,
    GuideLLMRun,
    chart,
    load_report,
    run,
)

__all__ = ["SCENARIOS", "GuideLLMError", "GuideLLMRun", "chart", "load_report", "run"]
