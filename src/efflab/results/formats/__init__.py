"""Other tools' result formats, in and out: MLPerf LoadGen logs and submission trees,
asv result folders, MLflow runs. Parsers turn foreign files into typed objects (or
BadInput naming the file and field); `ingest` turns those into efflab run records and
table versions."""
