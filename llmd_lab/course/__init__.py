"""The course around the notebooks: each notebook's header is the one source of its Goal, Time, Needs, steps and
talking points; the Antora pages, the sizing table and the instructor's views are derived from it."""
