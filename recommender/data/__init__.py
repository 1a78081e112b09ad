"""The interaction data every job reads, one step above the database.

:mod:`.interactions` turns consent-filtered events into the customer × product
confidence matrix; :mod:`.bulk` reads millions of events into arrays quickly;
:mod:`.exports` writes them as Parquet for a Spark cluster; :mod:`.signals`
counts popularity and bought-together from the matrix. Models, privacy,
training and serving all read through here; nothing here knows about models.
"""
