"""The ways of switching tracing on, and of checking it: everything outside the tracing core.

- ``cli``: the ``mlflow-ollama`` command line (also ``python -m mlflow_ollama``);
- ``_launcher`` and ``_bootstrap/``: ``mlflow-ollama run``, tracing every Python process a command starts;
- ``_autolog``: ``autolog()`` switched on for the user, configured by the environment;
- ``_experiment``: the experiment MLflow's variables name, where MLflow cannot read them itself;
- ``_ipython``: ``%load_ext mlflow_ollama``;
- ``doctor``: ``mlflow-ollama doctor``.

These modules import the core (``mlflow_ollama``'s own modules); the core never imports them.
"""
