"""What scored a run's accuracies: the integer engine for a quantized model, the float model for a
float one. Written into every record, summary and confirmation run."""

SCORED_BY_ENGINE = "integer engine"
SCORED_BY_FLOAT = "float model"
