"""The paper's experiments, its reported numbers, tables, figures and the verdict on its claims."""
