"""The report engine: datasets -> SQL, measures, charts, dashboards; print templates."""

from __future__ import annotations

from engine.registry import Registry


def register(registry: Registry) -> None:
    """Register the report engine's definition kinds."""
    import reports.print
    from reports.charts import BUILT_IN_CHART_TYPES
    from reports.kind import DashboardKind, DatasetKind

    registry.definition_kinds.add(DatasetKind())
    registry.definition_kinds.add(DashboardKind())
    for chart_type in BUILT_IN_CHART_TYPES:
        registry.chart_types.add(chart_type())

    reports.print.register(registry)
