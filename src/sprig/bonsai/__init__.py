"""Bonsai networks: grow a sparse RNN on a binary sequence task, prune it to a minimal
computational graph, export it and watch it run (Primozic 2023, "Growing Bonsai Networks with
RNNs")."""

from .._formats import GRAPH_FORMAT_VERSION as FORMAT_VERSION  # this package's files
from ._compile import CompileError, compile_machine, state_neuron
from ._export import (
    graph_from_dict,
    graph_to_dict,
    load_graph,
    save_graph,
    to_dot,
    to_python,
)
from ._fsm import (
    FSMError,
    StateMachine,
    TaskMachine,
    counterexample,
    extract_fsm,
    task_machine,
)
from ._graph import Edge, Graph, Node, extract_graph
from ._grow import PRESETS, Check, GrowConfig, finetune, grow, make_model, preset_config
from ._minimize import minimize
from ._pipeline import Attempt, BonsaiResult, best_result, grow_once, grow_seeds
from ._search import RECIPE, SIZES, Progress, SearchConfig, grow_bonsai
from ._tasks import TASKS, SampledTask, StepTask, Task, get_task
from ._threshold import (
    QUANTA,
    THRESHOLDS,
    ThresholdResult,
    clip,
    quantize,
    quantize_search,
    threshold_search,
)
from ._validate import Score, score
from ._viewer import drawing, layout, parse_inputs, render_html, write_html

__all__ = [
    "FORMAT_VERSION",
    "PRESETS",
    "QUANTA",
    "TASKS",
    "Attempt",
    "BonsaiResult",
    "Check",
    "CompileError",
    "Progress",
    "RECIPE",
    "SIZES",
    "SearchConfig",
    "THRESHOLDS",
    "Edge",
    "FSMError",
    "Graph",
    "GrowConfig",
    "Node",
    "SampledTask",
    "StateMachine",
    "Score",
    "StepTask",
    "Task",
    "TaskMachine",
    "ThresholdResult",
    "clip",
    "compile_machine",
    "counterexample",
    "extract_fsm",
    "extract_graph",
    "finetune",
    "get_task",
    "graph_from_dict",
    "graph_to_dict",
    "grow",
    "grow_bonsai",
    "grow_once",
    "grow_seeds",
    "best_result",
    "drawing",
    "layout",
    "parse_inputs",
    "render_html",
    "write_html",
    "load_graph",
    "make_model",
    "minimize",
    "save_graph",
    "preset_config",
    "quantize",
    "quantize_search",
    "score",
    "state_neuron",
    "threshold_search",
    "to_dot",
    "to_python",
    "task_machine",
]
