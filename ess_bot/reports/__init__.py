"""The activity report, declared: :mod:`~ess_bot.reports.catalogue` holds every figure (one table per
indicator: its measures, its breakdown, its French words, and where it appears — summary, CSV, XLSX
sheet, « Synthèse »); :mod:`~ess_bot.reports.declare` the words it is written with;
:mod:`~ess_bot.reports.sql` the SQL expressions they use.

Who uses it: :mod:`ess_bot.services.reports` plans the catalogue into SQL statements and returns the
figures (a :class:`~ess_bot.services.reports.Report`); :mod:`ess_bot.report_files` writes the summary
and the files from the same catalogue. Neither names an indicator: adding one is one entry in
``catalogue.TABLES`` (see that module's docstring). This package imports the storage models and the
vocabulary, never the chat layer.
"""
