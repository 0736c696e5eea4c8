"""Layout versions of the files sprig writes, one home for all four.

Each kind of file has its own number, bumped when that layout changes; a reader refuses a file
newer than it knows. They used to be four constants all named ``FORMAT_VERSION``.
"""

MODEL_FORMAT_VERSION = 1  # sprig.save: safetensors + JSON manifest (sprig.io)
CHECKPOINT_FORMAT_VERSION = 1  # sprig.io.save_checkpoint
GRAPH_FORMAT_VERSION = 1  # a bonsai graph's JSON export (sprig.bonsai)
RUN_FORMAT_VERSION = 1  # a run folder's run.json (sprig.runs)
