"""The chart's fixtures (helm, the chart's images loaded into the cluster) for the chart fault suite."""

from chart.conftest import chart_images, helm  # noqa: F401 - fixtures, registered here by import
