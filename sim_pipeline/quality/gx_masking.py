"""Privacy by construction for what GX stores: every suite validation result is masked before
GX writes it (its JSON result files and the Data Docs pages rendered from them): error
messages masked, tracebacks withheld, column-level observations and unexpected values dropped.
GX is imported only inside `masking`, while a suite runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sim_pipeline.quality.redact import masked

# Result keys that can hold a column's values (kept out of GX's stored results and Data Docs).
_VALUE_KEYS = (
    "observed_value",
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_list",
    "unexpected_index_list",
    "unexpected_index_query",
    "details",
)


def mask_suite_result(suite_result: Any, names: set[str]) -> Any:
    """A GX suite validation result with no data in it, changed in place before GX stores it
    (its JSON result files and the Data Docs pages rendered from them): an expectation's error
    message masked (`redact.masked`) and its traceback withheld (a traceback ends with the
    message, and a frame can quote a value); column-level observations and unexpected values
    dropped (table-level facts, row counts and missing columns, stay)."""
    for r in suite_result.results:
        info = r.exception_info or {}
        entries = [info] if "raised_exception" in info else list(info.values())
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            if entry.get("exception_message"):
                entry["exception_message"] = masked(str(entry["exception_message"]), names)[:300]
            if entry.get("exception_traceback"):
                entry["exception_traceback"] = "traceback withheld: it can quote data values"
        kind = getattr(r.expectation_config, "type", "") or ""
        if r.result and not kind.startswith("expect_table"):
            for key in _VALUE_KEYS:
                r.result.pop(key, None)
    return suite_result


class _MaskingStore:
    """The context's validation results store, masking each result before it is written."""

    def __init__(self, store: Any, names: set[str]) -> None:
        self._store, self._names = store, names

    def store_validation_results(self, suite_validation_result: Any, **kwargs: Any) -> Any:
        mask_suite_result(suite_validation_result, self._names)
        return self._store.store_validation_results(
            suite_validation_result=suite_validation_result, **kwargs
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@contextmanager
def masking(names: set[str]) -> Iterator[None]:
    """While a suite runs, every result GX stores goes through `mask_suite_result` first
    (validation definitions reach the store through this one property)."""
    from great_expectations.core.validation_definition import ValidationDefinition

    original = ValidationDefinition._validation_results_store

    def masking_store(self: Any) -> _MaskingStore:
        return _MaskingStore(original.fget(self), names)  # type: ignore[union-attr]

    ValidationDefinition._validation_results_store = property(masking_store)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ValidationDefinition._validation_results_store = original  # type: ignore[method-assign]
