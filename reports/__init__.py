"""Read-only views of studies: nothing here trains or writes to a storage.

- ``frames``: trial records -> a pandas DataFrame (the trials table, the CSV/Parquet export)
- ``info``: what the pages show (front, hypervolume, per-stage costs), computed from search/selection first
- ``runs``: a training run's page data, read from its folder
- ``figures``: plotly figures drawn from those numbers
- ``layout``: the parts every page shares (header, tables, the reproduce-this block)
- ``nas``, ``scaling``, ``confirm``, ``run_page``: the body of each kind of page
- ``html``: self-contained pages, one per study and run, and an index
"""
