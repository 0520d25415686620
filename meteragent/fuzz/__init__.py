"""Coverage-guided fuzz targets (atheris). Not shipped to meters."""
