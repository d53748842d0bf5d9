"""Reports for people (HTML, Markdown, figures) and machines (JSON, JUnit XML)."""
