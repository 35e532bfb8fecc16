"""The URL schemes the PDF renderer may fetch, kept apart from WeasyPrint so that importing
them (the web app, the CLI) does not load the renderer."""

STATIC_SCHEME = "portfolio-static:"
EVIDENCE_SCHEME = "evidence:"
PRINT_SCHEME = "evidence-print:"
