"""The annexe 2 usage indicators and their time series."""
