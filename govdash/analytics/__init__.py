"""Read side: queries over the warehouse, metrics, evaluation, charts and export."""
