"""Write side: recognise, clean and publish spreadsheets into the DuckDB warehouse."""
