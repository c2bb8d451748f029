"""The demo's parts (hack/demo.py drives them): traffic, timeline, steps, summary, narration;
the thin cluster and HTTP edges. Importable from tests and bench/ with hack/ on the path."""
