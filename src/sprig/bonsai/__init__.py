"""Bonsai networks: grow a sparse RNN on a binary sequence task, prune it to a minimal
computational graph, export it and watch it run (Primozic 2023, "Growing Bonsai Networks with
RNNs")."""

from ._export import (
    FORMAT_VERSION,
    graph_from_dict,
    graph_to_dict,
    load_graph,
    save_graph,
    to_dot,
    to_python,
)
from ._graph import Edge, Graph, Node, extract_graph
from ._grow import GrowConfig, grow, make_model
from ._tasks import TASKS, SampledTask, StepTask, Task, get_task
from ._threshold import THRESHOLDS, ThresholdResult, clip, threshold_search
from ._validate import Score, score

__all__ = [
    "FORMAT_VERSION",
    "TASKS",
    "THRESHOLDS",
    "Edge",
    "Graph",
    "GrowConfig",
    "Node",
    "SampledTask",
    "Score",
    "StepTask",
    "Task",
    "ThresholdResult",
    "clip",
    "extract_graph",
    "get_task",
    "graph_from_dict",
    "graph_to_dict",
    "grow",
    "load_graph",
    "make_model",
    "save_graph",
    "score",
    "threshold_search",
    "to_dot",
    "to_python",
]
