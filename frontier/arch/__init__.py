"""Architecture adapters: where each model family keeps its MLPs, declared per ``model_type``.

Nothing here probes attribute names: every supported family is one row in
:data:`ADAPTERS`, and a model of any other type gets a one-line error that names the
supported ones.
"""

from frontier.arch._adapter import (
    ADAPTERS,
    MLPAdapter,
    MLPHandle,
    WeightLayout,
    adapter_for,
    register_adapter,
    supported_model_types,
)

__all__ = [
    "ADAPTERS",
    "MLPAdapter",
    "MLPHandle",
    "WeightLayout",
    "adapter_for",
    "register_adapter",
    "supported_model_types",
]
