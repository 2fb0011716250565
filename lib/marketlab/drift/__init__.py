"""Distribution drift of key features and model scores between pipeline runs (``ops.drift``)."""
