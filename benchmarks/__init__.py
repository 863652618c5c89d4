"""Side-by-side benchmarks of this project's worker and store against arq, RQ, Celery, saq,
taskiq and dramatiq: ``python -m benchmarks.run`` (see ``benchmarks/README.md``)."""
