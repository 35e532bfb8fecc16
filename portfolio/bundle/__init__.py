"""The open portfolio bundle: export a learner's portfolio as a ZIP and import it elsewhere."""
