"""Operations: Prometheus metrics, JSON logs with request ids, readiness."""
