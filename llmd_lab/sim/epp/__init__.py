"""The llm-d endpoint picker (EPP), reimplemented after GIE v1.0.0 + llm-d-inference-scheduler v0.3.1.

``config`` loads an ``EndpointPickerConfig``; ``plugins`` holds the registered plugin types;
``scheduler`` runs profiles (filter → score → pick) and records a decision trace; ``director`` turns
an HTTP request into a routing decision; ``datastore``/``scraper`` keep the pool's endpoints and their
scraped metrics; ``server`` serves it all the way KServe starts the real EPP.
"""
