"""Training: matrix -> selection -> fit -> evaluate -> gate -> publish.

:mod:`.run` is the retraining job (the nightly ``recommender train``);
:mod:`.selection` and :mod:`.finalists` choose a recipe per shop on a validation
split cut from the training period; :mod:`.recipes` fits what was chosen;
:mod:`.evaluation` is the evaluation protocol and :mod:`.report` its written
report; :mod:`.gate` decides whether tonight's model may replace the current one
and :mod:`.publish` writes and publishes it; :mod:`.spark` and
:mod:`.spark_history` do the same work on a Spark cluster; :mod:`.tuning` searches
bounded hyper-parameters; :mod:`.maintenance` is the housekeeping every night ends with.
"""
