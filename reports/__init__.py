"""Read-only views of studies: nothing here trains or writes to a storage.

- ``frames``: trial records -> a pandas DataFrame (the trials table, the CSV/Parquet export)
- ``front``: what the Pareto plot and hypervolume chart show, from search/selection
- ``figures``: plotly figures drawn from those numbers
- ``html``: self-contained pages, one per study, and an index
"""
