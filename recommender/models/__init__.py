"""Models: one interface, several families, and the artifacts they are saved as.

:mod:`.base` is the interface every family implements (score a history, top-k
under filters, similar items, explain, fold-in, save/load with checksums);
:mod:`.factor` is the matrix-factorisation model the ALS engines produce;
:mod:`.families` holds the item models (EASE^R, item graphs) and the blend;
:mod:`.engines` fits ALS on one machine (``implicit``) or on Spark;
:mod:`.ann` and :mod:`.topk` find the top products fast; :mod:`.registry` owns
the artifact directories on disk (versions, the ``current`` pointer, retention).
"""
